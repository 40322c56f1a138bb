// SPDX-License-Identifier: MIT

// A lutf app in Go, built with -buildmode=c-shared. Each exported function
// takes the call handle, recovers any panic at the boundary (a panic that
// leaves a cgo callback kills the whole worker) and answers through the
// call's ops, wrapped in abi.c.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdlib.h>
#include "abi.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// input copies the call's input bytes (valid only during the call).
func input(call *C.struct_lutf_call) []byte {
	if call.input_len == 0 {
		return nil
	}
	return C.GoBytes(call.input, C.int(call.input_len))
}

func write(call *C.struct_lutf_call, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	return C.lutf_go_write(call, unsafe.Pointer(&b[0]), C.size_t(len(b))) == 0
}

func fail(call *C.struct_lutf_call, msg string) C.int {
	cs := C.CString(msg)
	defer C.free(unsafe.Pointer(cs))
	C.lutf_go_fail(call, cs)
	return 1
}

func setContentType(call *C.struct_lutf_call, t string) {
	cs := C.CString(t)
	defer C.free(unsafe.Pointer(cs))
	C.lutf_go_set_content_type(call, cs)
}

func config(call *C.struct_lutf_call, key string) (string, bool) {
	cs := C.CString(key)
	defer C.free(unsafe.Pointer(cs))
	v := C.lutf_go_config(call, cs)
	if v == nil {
		return "", false
	}
	return C.GoString(v), true
}

// guard runs fn and turns a panic into a function error with its value.
func guard(call *C.struct_lutf_call, fn func() C.int) (rc C.int) {
	defer func() {
		if p := recover(); p != nil {
			rc = fail(call, fmt.Sprintf("go panic: %v", p))
		}
	}()
	return fn()
}

// go_hello: "<greeting> <input>" and the words of the input, sorted, counted
// by goroutines (the Go runtime's own threads do the work).
//
//export go_hello
func go_hello(call *C.struct_lutf_call) C.int {
	return guard(call, func() C.int {
		in := string(input(call))
		greeting, ok := config(call, "greeting")
		if !ok {
			greeting = "hello from Go,"
		}
		words := strings.Fields(in)
		lens := make(chan int, len(words))
		for _, w := range words {
			go func(w string) { lens <- len(w) }(w)
		}
		total := 0
		for range words {
			total += <-lens
		}
		sort.Strings(words)
		out := fmt.Sprintf("%s %s\nsorted: %s\nletters: %d\n", greeting, in,
			strings.Join(words, " "), total)
		setContentType(call, "text/plain")
		if !write(call, []byte(out)) {
			return fail(call, "output too large")
		}
		return 0
	})
}

// go_echo: the input back (the least a Go function does: for measuring).
//
//export go_echo
func go_echo(call *C.struct_lutf_call) C.int {
	return guard(call, func() C.int {
		if !write(call, input(call)) {
			return fail(call, "output too large")
		}
		return 0
	})
}

// go_panic: panics (index out of range); the guard answers a function error.
//
//export go_panic
func go_panic(call *C.struct_lutf_call) C.int {
	return guard(call, func() C.int {
		var empty []int
		i := int(call.input_len) + 3
		return C.int(empty[i])
	})
}

// go_sleep: sleeps the input's milliseconds (at most 2000) in Go. The Labor
// that called it waits in the kernel (futex) while the goroutine sleeps, so
// labor_watch sees it blocked and the Supervisor moves its Cart.
//
//export go_sleep
func go_sleep(call *C.struct_lutf_call) C.int {
	return guard(call, func() C.int {
		ms, err := strconv.Atoi(strings.TrimSpace(string(input(call))))
		if err != nil || ms < 0 || ms > 2000 {
			return fail(call, "want milliseconds, 0 to 2000")
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		if !write(call, []byte("slept "+strconv.Itoa(ms)+" ms\n")) {
			return fail(call, "output too large")
		}
		return 0
	})
}

// go_info: what the Go runtime sees (for the docs' tier findings).
//
//export go_info
func go_info(call *C.struct_lutf_call) C.int {
	return guard(call, func() C.int {
		out := fmt.Sprintf("%s GOMAXPROCS=%d goroutines=%d\n", runtime.Version(),
			runtime.GOMAXPROCS(0), runtime.NumGoroutine())
		if !write(call, []byte(out)) {
			return fail(call, "output too large")
		}
		return 0
	})
}

func main() {}
