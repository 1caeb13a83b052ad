"""The preview engine's fused warp (a C extension with AVX2 code, built a second time for
AVX-512) for x86-64 with GCC or Clang.

It is optional: where it does not build, or the CPU lacks AVX2, `warp.py` does the same work
with OpenCV (720p, on 2 cores: 7-8 ms a frame against 3 ms). Everything else is declared
in pyproject.toml.
"""

import platform

from setuptools import Extension, setup

kernels = []
if platform.machine().lower() in ("x86_64", "amd64") and platform.system() != "Windows":
    kernels.append(
        Extension(
            "cinegen.engines.preview._warp_blend",
            ["cinegen/engines/preview/_warp_blend.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    )

setup(ext_modules=kernels)
