# BPF build helpers: compile bpf/<name>.bpf.c against the committed vmlinux/vmlinux.h
# (not the host's BTF) and generate <name>.skel.h with bpftool.
#
#   include(${CMAKE_SOURCE_DIR}/cmake/bpf.cmake)
#   lutf_bpf_skeleton(labor_watch
#                     SOURCE ${CMAKE_SOURCE_DIR}/bpf/labor_watch.bpf.c
#                     DEPENDS ${CMAKE_SOURCE_DIR}/bpf/labor_watch.h)
#   target_sources(mytarget PRIVATE ${labor_watch_SKEL_H})
#   target_include_directories(mytarget PRIVATE ${labor_watch_SKEL_DIR})
#
# The custom command's output is a file, so call the function in the directory of the target
# that lists ${<name>_SKEL_H} among its sources (a CMake rule for generated files).
# Per directory: the variables below are directory-scoped, and several
# folders (labor_watch, daemon, tests) build skeletons.
include_guard(DIRECTORY)

find_program(LUTF_BPF_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14
             DOC "clang able to emit -target bpf")
find_program(LUTF_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin DOC "bpftool, for gen skeleton")
find_program(LUTF_LLVM_STRIP NAMES llvm-strip llvm-strip-19 llvm-strip-18 llvm-strip-17
             llvm-strip-16 llvm-strip-15 llvm-strip-14 DOC "llvm-strip (optional)")

if(NOT LUTF_BPF_CLANG)
  message(FATAL_ERROR "labor_watch needs clang to build BPF programs: apt-get install clang "
                      "(Debian package 'clang', or 'clang-14')")
endif()
if(NOT LUTF_BPFTOOL)
  message(FATAL_ERROR "labor_watch needs bpftool to generate BPF skeletons: "
                      "apt-get install bpftool (Debian package 'bpftool')")
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i.86)$")
  set(LUTF_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(LUTF_BPF_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(riscv64)$")
  set(LUTF_BPF_ARCH riscv)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(s390x)$")
  set(LUTF_BPF_ARCH s390)
else()
  message(FATAL_ERROR "lutf BPF: no __TARGET_ARCH for processor '${CMAKE_SYSTEM_PROCESSOR}'")
endif()

set(LUTF_BPF_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/vmlinux CACHE PATH
    "Folder holding vmlinux.h (a link to the versioned dump)")
set(LUTF_BPF_INCLUDE_DIR ${CMAKE_SOURCE_DIR}/bpf)

# lutf_bpf_skeleton(<name> SOURCE <file.bpf.c> [DEPENDS <files>...])
# Produces ${CMAKE_CURRENT_BINARY_DIR}/bpf/<name>.bpf.o and <name>.skel.h, and sets
# <name>_SKEL_H (the header) and <name>_SKEL_DIR (its folder) in the caller's scope.
function(lutf_bpf_skeleton name)
  cmake_parse_arguments(A "" "SOURCE" "DEPENDS" ${ARGN})
  if(NOT A_SOURCE)
    message(FATAL_ERROR "lutf_bpf_skeleton(${name}): SOURCE is required")
  endif()
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  # -mcpu=v3: atomic exchange/fetch instructions (kernel >= 5.12), 32-bit jumps.
  set(flags -target bpf -O2 -g -mcpu=v3 -Wall -D__TARGET_ARCH_${LUTF_BPF_ARCH}
            -I${LUTF_BPF_VMLINUX_DIR} -I${LUTF_BPF_INCLUDE_DIR})
  if(LUTF_WERROR)
    list(APPEND flags -Werror)
  endif()
  if(LUTF_LLVM_STRIP)
    # Drop DWARF only; .BTF and .BTF.ext stay (CO-RE and map BTF need them).
    set(strip_cmd COMMAND ${LUTF_LLVM_STRIP} -g ${obj})
  else()
    set(strip_cmd "")
  endif()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${LUTF_BPF_CLANG} ${flags} -c ${A_SOURCE} -o ${obj}
    ${strip_cmd}
    DEPENDS ${A_SOURCE} ${A_DEPENDS} ${LUTF_BPF_VMLINUX_DIR}/vmlinux.h
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${LUTF_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  set(${name}_SKEL_H ${skel} PARENT_SCOPE)
  set(${name}_SKEL_DIR ${out_dir} PARENT_SCOPE)
endfunction()
