# lutf_configure_pc(IN OUT): write a pkg-config file from IN, with
# @LUTF_PC_LIBDIR@ and @LUTF_PC_INCLUDEDIR@ relative to ${prefix} where
# GNUInstallDirs gives relative folders, absolute where it gives absolute ones.
include(GNUInstallDirs)

function(lutf_configure_pc in out)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(LUTF_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  else()
    set(LUTF_PC_LIBDIR "\${exec_prefix}/${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(LUTF_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(LUTF_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  configure_file(${in} ${out} @ONLY)
endfunction()
