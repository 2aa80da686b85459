"""``@app.cls`` parameters and ``with_options`` on the local backend: real worker processes."""

from __future__ import annotations

from cls_params_suite import ClsParametersConformance


class TestLocalClsParameters(ClsParametersConformance):
    backend = "local"
