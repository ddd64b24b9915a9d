# Installs the single header as a CMake package, so consumers can write
#   find_package(many_level CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE many_level::many_level)
# tests/consumer proves it. A project that adds many-level as a subdirectory
# does not install it unless it sets MANY_LEVEL_INSTALL.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

option(MANY_LEVEL_INSTALL "Install many-level's single header and CMake package" ${MANY_LEVEL_IS_TOP_LEVEL})
if(NOT MANY_LEVEL_INSTALL)
  return()
endif()

set(MANY_LEVEL_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/many_level)

# The installed target is the single header under the usual name.
set_target_properties(many_level_single PROPERTIES EXPORT_NAME many_level)
install(TARGETS many_level_single EXPORT many_level_targets)
install(FILES single_include/many_level.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT many_level_targets NAMESPACE many_level:: DESTINATION ${MANY_LEVEL_CONFIG_DIR})

# The package finds SQLite only when the installed target needs it.
if(MANY_LEVEL_WITH_SQLITE)
  set(MANY_LEVEL_PACKAGE_WITH_SQLITE ON)
else()
  set(MANY_LEVEL_PACKAGE_WITH_SQLITE OFF)
endif()
# And OpenSSL likewise.
if(MANY_LEVEL_WITH_OPENSSL)
  set(MANY_LEVEL_PACKAGE_WITH_OPENSSL ON)
else()
  set(MANY_LEVEL_PACKAGE_WITH_OPENSSL OFF)
endif()
configure_package_config_file(cmake/many_levelConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/many_levelConfig.cmake
  INSTALL_DESTINATION ${MANY_LEVEL_CONFIG_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/many_levelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/many_levelConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/many_levelConfigVersion.cmake
  DESTINATION ${MANY_LEVEL_CONFIG_DIR})
