// SPDX-License-Identifier: MIT
//! A lutf app in Rust: a cdylib built with Debian's rustc, no crates. The C
//! ABI of include/lutf/function.h is declared here by hand (#[repr(C)], same
//! field order); every exported function runs its body under catch_unwind,
//! so a panic answers FUNCTION_ERROR instead of unwinding into C (undefined
//! behaviour) or killing the worker.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

/// LUTF_ABI_VERSION of the header this file mirrors.
#[no_mangle]
pub static lutf_abi_version: u32 = 1;

/// struct lutf_call_ops
#[repr(C)]
pub struct CallOps {
    size: u32,
    write: unsafe extern "C" fn(*mut Call, *const c_void, usize) -> c_int,
    set_content_type: unsafe extern "C" fn(*mut Call, *const c_char) -> c_int,
    fail: unsafe extern "C" fn(*mut Call, *const c_char) -> c_int,
    log: unsafe extern "C" fn(*mut Call, *const c_char, usize),
    config: unsafe extern "C" fn(*mut Call, *const c_char) -> *const c_char,
    meta: unsafe extern "C" fn(*mut Call, *const c_char) -> *const c_char,
}

/// struct lutf_call
#[repr(C)]
pub struct Call {
    ops: *const CallOps,
    input: *const c_void,
    input_len: usize,
    request_id: u64,
    deadline_ns: u64,
    app_state: *mut c_void,
    runtime_priv: *mut c_void,
}

/// A safe view of one call, valid during the call only.
struct Ctx(*mut Call);

impl Ctx {
    fn ops(&self) -> &CallOps {
        unsafe { &*(*self.0).ops }
    }
    fn input(&self) -> &[u8] {
        let c = unsafe { &*self.0 };
        if c.input_len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(c.input as *const u8, c.input_len) }
    }
    fn write(&self, b: &[u8]) -> bool {
        unsafe { (self.ops().write)(self.0, b.as_ptr() as *const c_void, b.len()) == 0 }
    }
    fn set_content_type(&self, t: &str) {
        if let Ok(t) = CString::new(t) {
            unsafe { (self.ops().set_content_type)(self.0, t.as_ptr()) };
        }
    }
    fn fail(&self, msg: &str) -> c_int {
        let msg = CString::new(msg.replace('\0', " ")).unwrap_or_default();
        unsafe { (self.ops().fail)(self.0, msg.as_ptr()) };
        1
    }
    fn log(&self, line: &str) {
        unsafe { (self.ops().log)(self.0, line.as_ptr() as *const c_char, line.len()) };
    }
    fn config(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        let v = unsafe { (self.ops().config)(self.0, key.as_ptr()) };
        if v.is_null() {
            return None;
        }
        Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
    }
    fn state(&self) -> Option<&State> {
        let p = unsafe { (*self.0).app_state } as *const State;
        unsafe { p.as_ref() }
    }
}

/// Warm state across calls (lutf_app_init / lutf_app_fini).
pub struct State {
    calls: AtomicU64,
}

/// Runs body; a panic becomes a function error carrying its message.
fn guard(call: *mut Call, body: fn(&Ctx) -> c_int) -> c_int {
    let ctx = Ctx(call);
    match panic::catch_unwind(AssertUnwindSafe(|| body(&ctx))) {
        Ok(rc) => rc,
        Err(e) => {
            let what = if let Some(s) = e.downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = e.downcast_ref::<String>() {
                s.clone()
            } else {
                "unknown payload".to_string()
            };
            ctx.fail(&format!("rust panic: {}", what))
        }
    }
}

#[no_mangle]
pub extern "C" fn lutf_app_init(state: *mut *mut c_void) -> c_int {
    // One line on stderr (the tenant's log) per panic, whatever
    // RUST_BACKTRACE says: no backtrace walk inside a confined worker.
    panic::set_hook(Box::new(|info| eprintln!("rs_hello: {}", info)));
    let s = Box::new(State { calls: AtomicU64::new(0) });
    unsafe { *state = Box::into_raw(s) as *mut c_void };
    0
}

#[no_mangle]
pub extern "C" fn lutf_app_fini(state: *mut c_void) {
    if !state.is_null() {
        drop(unsafe { Box::from_raw(state as *mut State) });
    }
}

/// rs_hello: "<greeting> <input>", then each letter of the input with its
/// count (a BTreeMap, so in order), and the app's call count.
#[no_mangle]
pub extern "C" fn rs_hello(call: *mut Call) -> c_int {
    guard(call, |c| {
        let n = c.state().map_or(0, |s| s.calls.fetch_add(1, Ordering::Relaxed) + 1);
        let input = String::from_utf8_lossy(c.input()).into_owned();
        let greeting = c.config("greeting").unwrap_or_else(|| "hello from Rust,".into());
        let mut counts = BTreeMap::new();
        for ch in input.chars().filter(|ch| ch.is_alphabetic()) {
            *counts.entry(ch).or_insert(0u32) += 1;
        }
        let letters: Vec<String> = counts.iter().map(|(k, v)| format!("{}{}", k, v)).collect();
        let out = format!("{} {}\nletters: {}\ncalls: {}\n", greeting, input, letters.join(" "), n);
        c.set_content_type("text/plain");
        if !c.write(out.as_bytes()) {
            return c.fail("output too large");
        }
        0
    })
}

/// rs_echo: the input back (the least a Rust function does: for measuring).
#[no_mangle]
pub extern "C" fn rs_echo(call: *mut Call) -> c_int {
    guard(call, |c| if c.write(c.input()) { 0 } else { c.fail("output too large") })
}

/// rs_panic: panics with a message; the guard answers a function error.
#[no_mangle]
pub extern "C" fn rs_panic(call: *mut Call) -> c_int {
    guard(call, |c| {
        c.log("rs_panic: about to panic");
        let v: Vec<u8> = c.input().to_vec();
        let n: u32 = String::from_utf8_lossy(&v).trim().parse().expect("input is not a number");
        c.write(format!("{}\n", n).as_bytes());
        0
    })
}
