# Install rules for what no target owns: `cmake --install` puts things where a
# distribution would (docs/operator.md lists them). Binaries and the client
# library install from their own folders (userspace/daemon, cli, client).
include(GNUInstallDirs)

set(LUTF_SYSTEMD_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" CACHE PATH
    "Where lutfd.service goes")

# Headers to build functions against (client.h and protocol.h come with the client library).
install(FILES ${CMAKE_SOURCE_DIR}/include/lutf/function.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lutf)
# The default config, every key commented (FULL: /etc when the prefix is /usr).
install(FILES ${CMAKE_SOURCE_DIR}/etc/lutfd.conf DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/lutf)
# The isolation tiers (data, one file a tier).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/policies/ DESTINATION ${CMAKE_INSTALL_DATADIR}/lutf/policies)
# The guides.
file(GLOB LUTF_DOCS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${LUTF_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The systemd unit, pointing at the installed lutfd and config.
set(LUTF_UNIT_EXEC ${CMAKE_INSTALL_FULL_SBINDIR}/lutfd)
set(LUTF_UNIT_CONF ${CMAKE_INSTALL_FULL_SYSCONFDIR}/lutf/lutfd.conf)
set(LUTF_UNIT_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
configure_file(${CMAKE_SOURCE_DIR}/etc/lutfd.service.in ${CMAKE_BINARY_DIR}/etc/lutfd.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/etc/lutfd.service DESTINATION ${LUTF_SYSTEMD_UNITDIR})
