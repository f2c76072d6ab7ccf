# Cross-compiling flatlink for a Raspberry Pi (arm64, Debian/Raspberry Pi OS bookworm)
# on an amd64 Debian machine. See docs/operations.md, "Building for the Raspberry Pi".
# scripts/arm64.sh does it all (packages, sysroot, build, unit tests under qemu, .debs):
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DFLATLINK_SYSROOT=$PWD/build-arm64/sysroot \
#         "-DCMAKE_CROSSCOMPILING_EMULATOR=qemu-aarch64-static;-L;/"
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# The arm64 libraries come from `dpkg --add-architecture arm64` (installed beside the
# native ones under /usr/lib/aarch64-linux-gnu), except libwebsockets-dev:arm64, which
# conflicts with the native one: it is unpacked into FLATLINK_SYSROOT instead.
set(FLATLINK_SYSROOT "" CACHE PATH "Folder with libwebsockets-dev:arm64 unpacked (dpkg-deb -x)")
# CMake reads this file again for its try_compile projects, in the same process: pass the
# sysroot on, or their pass would set PKG_CONFIG_LIBDIR below without it.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FLATLINK_SYSROOT)
set(CMAKE_FIND_ROOT_PATH ${FLATLINK_SYSROOT} /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# pkg-config: the arm64 .pc files, the sysroot's first (scripts/arm64.sh points the
# sysroot's libwebsockets.pc at the sysroot).
set(ENV{PKG_CONFIG_LIBDIR} "${FLATLINK_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
# libwebsockets' headers come from the sysroot: its lws_config.h is the arm64 one.
if(FLATLINK_SYSROOT)
  include_directories(BEFORE SYSTEM ${FLATLINK_SYSROOT}/usr/include)
  link_directories(${FLATLINK_SYSROOT}/usr/lib/aarch64-linux-gnu)
endif()

set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
# The -dbgsym packages: CPack splits the debug information with the target's binutils.
set(CPACK_OBJCOPY_EXECUTABLE aarch64-linux-gnu-objcopy)
set(CPACK_READELF_EXECUTABLE aarch64-linux-gnu-readelf)
