# Provides the target `ulmfit::torch` for LibTorch.
#
# LibTorch is found through CMAKE_PREFIX_PATH / Torch_DIR (the set-up script passes
# the pinned wheel's torch.utils.cmake_prefix_path). The PyPI wheel is a CUDA
# build, and its TorchConfig.cmake stops with a fatal error wherever no CUDA
# toolkit is installed, although its libraries run there. ulmfit compiles no
# CUDA code of its own, so it needs no toolkit: the wheel's libraries are
# imported directly, and the CUDA path is one more library, torch_cuda, linked
# even though nothing names its symbols (it registers the CUDA kernels when it
# loads). ULMFIT_CUDA=AUTO links it where an NVIDIA driver is installed, ON
# always (a binary built here then runs on CUDA wherever the same wheel's
# libraries and a driver are), OFF never. A CPU-only LibTorch goes through its
# own TorchConfig.cmake.
set(ULMFIT_CUDA "AUTO" CACHE STRING "Build the CUDA path: AUTO, ON or OFF")
set_property(CACHE ULMFIT_CUDA PROPERTY STRINGS AUTO ON OFF)

find_path(ULMFIT_TORCH_CONFIG_DIR TorchConfig.cmake
  HINTS "${Torch_DIR}" ENV Torch_DIR
  PATH_SUFFIXES share/cmake/Torch Torch
  DOC "Folder holding LibTorch's TorchConfig.cmake")
if(NOT ULMFIT_TORCH_CONFIG_DIR)
  message(FATAL_ERROR
    "LibTorch not found. Run scripts/setup, or pass -DCMAKE_PREFIX_PATH=<libtorch or "
    "python -c 'import torch; print(torch.utils.cmake_prefix_path)'>.")
endif()
get_filename_component(ULMFIT_TORCH_ROOT "${ULMFIT_TORCH_CONFIG_DIR}/../../.." ABSOLUTE)

set(_torch_has_cuda OFF)
if(EXISTS "${ULMFIT_TORCH_ROOT}/lib/libtorch_cuda.so")
  set(_torch_has_cuda ON)
endif()

set(_use_cuda OFF)
if(ULMFIT_CUDA STREQUAL "ON")
  if(NOT _torch_has_cuda)
    message(FATAL_ERROR "ULMFIT_CUDA=ON, but the LibTorch at ${ULMFIT_TORCH_ROOT} has no libtorch_cuda.so")
  endif()
  set(_use_cuda ON)
elseif(ULMFIT_CUDA STREQUAL "AUTO" AND _torch_has_cuda AND EXISTS "/dev/nvidiactl")
  set(_use_cuda ON)
endif()

add_library(ulmfit_torch INTERFACE)
if(NOT _torch_has_cuda)
  set(Torch_DIR "${ULMFIT_TORCH_CONFIG_DIR}")
  find_package(Torch REQUIRED CONFIG)
  target_link_libraries(ulmfit_torch INTERFACE ${TORCH_LIBRARIES})
else()
  # torch_cpu and c10 carry every CPU kernel.
  foreach(_lib torch_cpu c10)
    find_library(ULMFIT_LIB_${_lib} ${_lib} PATHS "${ULMFIT_TORCH_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  endforeach()
  target_include_directories(ulmfit_torch SYSTEM INTERFACE
    "${ULMFIT_TORCH_ROOT}/include"
    "${ULMFIT_TORCH_ROOT}/include/torch/csrc/api/include")
  target_link_libraries(ulmfit_torch INTERFACE ${ULMFIT_LIB_torch_cpu} ${ULMFIT_LIB_c10})
  if(_use_cuda)
    find_library(ULMFIT_LIB_torch_cuda torch_cuda PATHS "${ULMFIT_TORCH_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
    # --no-as-needed: the linker would otherwise drop a library whose symbols
    # nothing names, and CUDA would never be registered.
    target_link_libraries(ulmfit_torch INTERFACE
      "-Wl,--no-as-needed" ${ULMFIT_LIB_torch_cuda} "-Wl,--as-needed")
  endif()
  # torch_cpu needs CUDA runtime libraries shipped beside it (profiler support);
  # the linker must see them to check the link, the loader finds them itself.
  file(GLOB _nv_dirs "${ULMFIT_TORCH_ROOT}/../nvidia/*/lib")
  foreach(_d ${_nv_dirs})
    target_link_options(ulmfit_torch INTERFACE "LINKER:-rpath-link,${_d}")
  endforeach()
endif()
set(ULMFIT_WITH_CUDA ${_use_cuda})
add_library(ulmfit::torch ALIAS ulmfit_torch)
message(STATUS "ulmfit: LibTorch at ${ULMFIT_TORCH_ROOT} (CUDA path: ${ULMFIT_WITH_CUDA})")
