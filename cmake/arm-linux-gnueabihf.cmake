# Cross-compiling flatlink for a Raspberry Pi (armhf: 32-bit Raspberry Pi OS, Debian/Raspberry Pi OS bookworm)
# on an amd64 Debian machine. See docs/operations.md, "Building for the Raspberry Pi".
# scripts/armhf.sh does it all (packages, sysroot, build, unit tests under qemu, .debs):
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake \
#         -DFLATLINK_SYSROOT=$PWD/build-armhf/sysroot \
#         "-DCMAKE_CROSSCOMPILING_EMULATOR=qemu-arm-static;-L;/"
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)

# The armhf libraries come from `dpkg --add-architecture armhf` (installed beside the
# native ones under /usr/lib/arm-linux-gnueabihf), except libwebsockets-dev:armhf, which
# conflicts with the native one: it is unpacked into FLATLINK_SYSROOT instead.
set(FLATLINK_SYSROOT "" CACHE PATH "Folder with libwebsockets-dev:armhf unpacked (dpkg-deb -x)")
# CMake reads this file again for its try_compile projects, in the same process: pass the
# sysroot on, or their pass would set PKG_CONFIG_LIBDIR below without it.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FLATLINK_SYSROOT)
set(CMAKE_FIND_ROOT_PATH ${FLATLINK_SYSROOT} /usr/arm-linux-gnueabihf /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)

# pkg-config: the armhf .pc files, the sysroot's first (scripts/armhf.sh points the
# sysroot's libwebsockets.pc at the sysroot).
set(ENV{PKG_CONFIG_LIBDIR} "${FLATLINK_SYSROOT}/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
# libwebsockets' headers come from the sysroot: its lws_config.h is the armhf one.
if(FLATLINK_SYSROOT)
  include_directories(BEFORE SYSTEM ${FLATLINK_SYSROOT}/usr/include)
  link_directories(${FLATLINK_SYSROOT}/usr/lib/arm-linux-gnueabihf)
endif()

set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE armhf)
# The -dbgsym packages: CPack splits the debug information with the target's binutils.
set(CPACK_OBJCOPY_EXECUTABLE arm-linux-gnueabihf-objcopy)
set(CPACK_READELF_EXECUTABLE arm-linux-gnueabihf-readelf)
