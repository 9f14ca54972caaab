# Provides the target `ulmfit::torch` for LibTorch.
#
# LibTorch is found through CMAKE_PREFIX_PATH / Torch_DIR (the set-up script passes
# the pinned wheel's torch.utils.cmake_prefix_path). The PyPI wheel is a CUDA
# build, and its TorchConfig.cmake stops with a fatal error wherever no CUDA
# toolkit is installed, although its CPU libraries run there. So a CUDA build of
# LibTorch is used through TorchConfig.cmake only when CUDA is wanted
# (ULMFIT_CUDA=ON, or AUTO on a machine with an NVIDIA driver and nvcc);
# otherwise its CPU libraries (torch_cpu, c10) are imported directly.
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
  set(_use_cuda ON)
elseif(ULMFIT_CUDA STREQUAL "AUTO" AND _torch_has_cuda)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND EXISTS "/dev/nvidiactl")
    set(_use_cuda ON)
  endif()
endif()

if(_use_cuda OR NOT _torch_has_cuda)
  set(Torch_DIR "${ULMFIT_TORCH_CONFIG_DIR}")
  find_package(Torch REQUIRED CONFIG)
  add_library(ulmfit_torch INTERFACE)
  target_link_libraries(ulmfit_torch INTERFACE ${TORCH_LIBRARIES})
  set(ULMFIT_WITH_CUDA ${_use_cuda})
else()
  # CPU-only import of a CUDA build: torch_cpu and c10 carry every CPU kernel.
  foreach(_lib torch_cpu c10)
    find_library(ULMFIT_LIB_${_lib} ${_lib} PATHS "${ULMFIT_TORCH_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  endforeach()
  add_library(ulmfit_torch INTERFACE)
  target_include_directories(ulmfit_torch SYSTEM INTERFACE
    "${ULMFIT_TORCH_ROOT}/include"
    "${ULMFIT_TORCH_ROOT}/include/torch/csrc/api/include")
  target_link_libraries(ulmfit_torch INTERFACE ${ULMFIT_LIB_torch_cpu} ${ULMFIT_LIB_c10})
  # torch_cpu needs CUDA runtime libraries shipped beside it (profiler support);
  # the linker must see them to check the link, the loader finds them itself.
  file(GLOB _nv_dirs "${ULMFIT_TORCH_ROOT}/../nvidia/*/lib")
  foreach(_d ${_nv_dirs})
    target_link_options(ulmfit_torch INTERFACE "LINKER:-rpath-link,${_d}")
  endforeach()
  set(ULMFIT_WITH_CUDA OFF)
endif()
add_library(ulmfit::torch ALIAS ulmfit_torch)
message(STATUS "ulmfit: LibTorch at ${ULMFIT_TORCH_ROOT} (CUDA path: ${ULMFIT_WITH_CUDA})")
