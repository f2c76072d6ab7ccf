# Debian packages through CPack (`cpack -G DEB` in the build folder):
#   flatlink-gateway  flatlinkd, its unit, sysusers/tmpfiles snippets, examples, manual page
#   flatlink-cloud    flatlink-cloud, its unit, sysusers snippet, the dashboard, examples, manual page
#   flatlink-*-dbgsym the debug information the stripped binaries left behind (.ddeb)
# Nothing is shipped under /etc: the maintainer scripts (packaging/debian/<package>/) create
# the user and /etc/flatlink/<name>.json from /usr/share/flatlink/examples/ only when absent
# (no conffile prompt on upgrade), and purge removes /etc/flatlink and /var/lib/flatlink.
# They neither enable nor start a service: the operator configures it first.
# Each package carries /usr/share/doc/<package>/copyright and changelog.gz (with the
# upgrade notes) from packaging/, and a manual page generated from --help at build time
# (packaging/manpage.sh). `lintian` is clean on both (tests/system/packaging.test.mjs).
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  # flatlink-cloud has the installed dashboard's path built in, from the prefix.
  message(WARNING "the Debian packages install under /usr but this build's prefix is ${CMAKE_INSTALL_PREFIX}: "
                  "configure with -DCMAKE_INSTALL_PREFIX=/usr before running cpack")
endif()
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "flatlink")
set(CPACK_PACKAGE_VENDOR "flatlink")
set(CPACK_PACKAGE_CONTACT "flatlink maintainers <maintainers@flatlink.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_DEB_COMPONENT_INSTALL ON)
# Stripped binaries (flatlinkd was 52.7 MB with its debug information, on an SD card);
# the debug information goes to flatlink-<component>-dbgsym (.ddeb), as Debian does.
# CPackDeb strips what it finds unstripped after moving the debug information out
# (objcopy); CPACK_STRIP_FILES would strip first and leave nothing to move.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_COMPONENTS_ALL gateway cloud)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/flatlink/flatlink")
# Library dependencies come from dpkg-shlibdeps (libwebsockets17, libmosquitto1,
# libserialport0, libsqlite3-0, libssl3, ...); systemd brings sysusers and tmpfiles.
# A cross build whose dpkg-shlibdeps cannot read the target's libraries turns this
# off and gets the same list written out.
option(FLATLINK_DEB_SHLIBDEPS "Compute the packages' library dependencies with dpkg-shlibdeps" ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ${FLATLINK_DEB_SHLIBDEPS})
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(flatlink_gateway_depends "systemd (>= 247)")
set(flatlink_cloud_depends "systemd (>= 247)")
if(NOT FLATLINK_DEB_SHLIBDEPS)
  string(APPEND flatlink_gateway_depends ", libc6 (>= 2.34), libstdc++6 (>= 12), libwebsockets17 (>= 4.1.0), "
         "libmosquitto1 (>= 1.6), libserialport0, libsqlite3-0 (>= 3.5.9), libssl3 (>= 3.0.0), "
         "libasound2 (>= 1.0.16), libopus0 (>= 1.1)")
  string(APPEND flatlink_cloud_depends ", libc6 (>= 2.34), libstdc++6 (>= 12), libwebsockets17 (>= 4.1.0), libssl3 (>= 3.0.0), libuv1 (>= 1.18)")
endif()

set(CPACK_DEBIAN_GATEWAY_PACKAGE_NAME "flatlink-gateway")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_DEPENDS "${flatlink_gateway_depends}")
set(CPACK_COMPONENT_GATEWAY_DESCRIPTION
    "gateway daemon linking a flat's devices to the flatlink cloud\nflatlinkd bridges a flat's devices (serial, WiFly, MQTT, audio) to the\nflatlink cloud over one persistent WebSocket, with a durable outbox, and\nruns as a hardened systemd service.")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/postinst;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/prerm;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/postrm")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_CLOUD_PACKAGE_NAME "flatlink-cloud")
set(CPACK_DEBIAN_CLOUD_PACKAGE_DEPENDS "${flatlink_cloud_depends}")
# "event_loop": "libuv" (not the default) needs lws' libuv plugin, loaded at run time.
set(CPACK_DEBIAN_CLOUD_PACKAGE_SUGGESTS "libwebsockets-evlib-uv")
set(CPACK_COMPONENT_CLOUD_DESCRIPTION
    "cloud server for flatlink gateways and their dashboard\nflatlink-cloud accepts flatlink gateways and browsers, routes status up and\ncommands down, and serves the dashboard. It runs as a hardened systemd\nservice.")
set(CPACK_DEBIAN_CLOUD_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/postinst;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/prerm;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/postrm")
set(CPACK_DEBIAN_CLOUD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Documentation each package carries: copyright, the changelog (native package:
# changelog.gz) with the upgrade notes, and a manual page from the binary's own --help.
foreach(package gateway cloud)
  set(doc "${CMAKE_INSTALL_DATAROOTDIR}/doc/flatlink-${package}")
  install(FILES ${CMAKE_SOURCE_DIR}/packaging/copyright DESTINATION ${doc} COMPONENT ${package})
endforeach()
# The outputs' folder exists from configure time on: the three commands below may run in
# any order (a clean clone's parallel build ran a manual page before the changelog).
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/packaging)
set(flatlink_changelog_gz "${CMAKE_BINARY_DIR}/packaging/changelog.gz")
add_custom_command(OUTPUT ${flatlink_changelog_gz}
  COMMAND sh -c "gzip -9n < '${CMAKE_SOURCE_DIR}/packaging/changelog' > '${flatlink_changelog_gz}'"
  DEPENDS ${CMAKE_SOURCE_DIR}/packaging/changelog VERBATIM)
set(flatlink_man_gateway "${CMAKE_BINARY_DIR}/packaging/flatlinkd.8.gz")
set(flatlink_man_cloud "${CMAKE_BINARY_DIR}/packaging/flatlink-cloud.8.gz")
add_custom_command(OUTPUT ${flatlink_man_gateway}
  COMMAND ${CMAKE_SOURCE_DIR}/packaging/manpage.sh ${flatlink_man_gateway} flatlinkd flatlink-gateway
          "gateway daemon linking a flat's devices to the flatlink cloud" ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:flatlinkd>
  DEPENDS flatlinkd ${CMAKE_SOURCE_DIR}/packaging/manpage.sh VERBATIM)
add_custom_command(OUTPUT ${flatlink_man_cloud}
  COMMAND ${CMAKE_SOURCE_DIR}/packaging/manpage.sh ${flatlink_man_cloud} flatlink-cloud flatlink-cloud
          "cloud server for flatlink gateways and their dashboard" ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:flatlink-cloud>
  DEPENDS flatlink-cloud ${CMAKE_SOURCE_DIR}/packaging/manpage.sh VERBATIM)
add_custom_target(flatlink_package_docs ALL DEPENDS ${flatlink_changelog_gz} ${flatlink_man_gateway} ${flatlink_man_cloud})
install(FILES ${flatlink_changelog_gz} DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/flatlink-gateway COMPONENT gateway)
install(FILES ${flatlink_changelog_gz} DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/flatlink-cloud COMPONENT cloud)
install(FILES ${flatlink_man_gateway} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT gateway)
install(FILES ${flatlink_man_cloud} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT cloud)

include(CPack)
