# `cmake --install` and the .deb (CPack). The layout, under the prefix (/usr for the package):
#   bin/                  wasmlet, containerd-shim-wasmlet-v2
#   lib/wasmlet/          libnode.so.108 (V8), found through the binaries' RUNPATH $ORIGIN/../lib/wasmlet
#   include/wasmlet/      the guest SDK's headers
#   share/wasmlet/sdk/    the whole SDK (toolchain file, headers, sdk.cc): what `wasmlet new` uses
#   share/wasmlet/examples/, configs/, deploy/   the example modules, configs and deployment files
#   lib/systemd/system/wasmlet.service, and /etc/wasmlet/config.json (a conffile) in the package
set(WASMLET_INSTALLED_BINARIES wasmlet containerd-shim-wasmlet-v2)
set_target_properties(${WASMLET_INSTALLED_BINARIES} PROPERTIES INSTALL_RPATH "$ORIGIN/../lib/wasmlet")
install(TARGETS ${WASMLET_INSTALLED_BINARIES} RUNTIME DESTINATION bin)
# The file itself, not the symlinks around it.
get_filename_component(v8_real "${V8_LIBRARY}" REALPATH)
install(FILES "${v8_real}" DESTINATION lib/wasmlet RENAME libnode.so.108)
install(DIRECTORY sdk/include/wasmlet DESTINATION include)
install(DIRECTORY sdk/ DESTINATION share/wasmlet/sdk)
install(DIRECTORY "${PROJECT_BINARY_DIR}/examples/" DESTINATION share/wasmlet/examples
        FILES_MATCHING PATTERN "*.wasm" PATTERN CMakeFiles EXCLUDE)
install(DIRECTORY configs/ DESTINATION share/wasmlet/configs)
install(DIRECTORY deploy/ DESTINATION share/wasmlet/deploy)
install(FILES README.md DESTINATION share/doc/wasmlet)
install(FILES packaging/wasmlet.service DESTINATION lib/systemd/system)
# The service's config goes to /etc for a system install only: the package (CPack installs
# with the prefix /usr under DESTDIR, which file(INSTALL) adds itself) or --prefix /usr. An
# install to any other prefix stays inside it.
install(CODE "
  if(CMAKE_INSTALL_PREFIX MATCHES \"(^|/)usr/?$\")
    file(INSTALL \"${PROJECT_SOURCE_DIR}/packaging/config.json\" DESTINATION \"\${CMAKE_INSTALL_PREFIX}/../etc/wasmlet\")
  endif()")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wasmlet)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WebAssembly functions and filters through the Proxy-Wasm ABI")
set(CPACK_PACKAGE_CONTACT "wasmlet developers <wasmlet@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Dependencies from the binaries' shared libraries (dpkg-shlibdeps); libnode is the package's own.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${CMAKE_INSTALL_PREFIX}/lib/wasmlet;/usr/lib/wasmlet")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server, containerd, clang-19, lld-19, wasi-libc")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/packaging/conffiles;${PROJECT_SOURCE_DIR}/packaging/postinst;${PROJECT_SOURCE_DIR}/packaging/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)  # the build's debug information stays in the build tree
include(CPack)
