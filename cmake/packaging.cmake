# Debian packages through CPack (`cpack -G DEB` in the build folder):
#   flatlink-gateway  flatlinkd, its unit, sysusers/tmpfiles snippets, /etc/flatlink/gateway.json
#   flatlink-cloud    flatlink-cloud, its unit, sysusers snippet, the dashboard, /etc/flatlink/cloud.json
# Maintainer scripts (packaging/debian/<package>/) create the user and reload systemd;
# they neither enable nor start a service: the operator configures it first.
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
  string(APPEND flatlink_cloud_depends ", libc6 (>= 2.34), libstdc++6 (>= 12), libwebsockets17 (>= 4.1.0), libssl3 (>= 3.0.0)")
endif()

set(CPACK_DEBIAN_GATEWAY_PACKAGE_NAME "flatlink-gateway")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_DEPENDS "${flatlink_gateway_depends}")
set(CPACK_COMPONENT_GATEWAY_DESCRIPTION
    "flatlink gateway daemon (flatlinkd)\n Bridges a flat's devices (serial, WiFly, MQTT, audio) to the flatlink cloud over one\n persistent WebSocket, with a durable outbox. Runs as a hardened systemd service.")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/conffiles;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/postinst;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/prerm;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-gateway/postrm")
set(CPACK_DEBIAN_GATEWAY_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_CLOUD_PACKAGE_NAME "flatlink-cloud")
set(CPACK_DEBIAN_CLOUD_PACKAGE_DEPENDS "${flatlink_cloud_depends}")
set(CPACK_COMPONENT_CLOUD_DESCRIPTION
    "flatlink cloud server (flatlink-cloud)\n Accepts flatlink gateways and browsers, routes status up and commands down,\n and serves the dashboard. Runs as a hardened systemd service.")
set(CPACK_DEBIAN_CLOUD_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/conffiles;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/postinst;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/prerm;${CMAKE_SOURCE_DIR}/packaging/debian/flatlink-cloud/postrm")
set(CPACK_DEBIAN_CLOUD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
