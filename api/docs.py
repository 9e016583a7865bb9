"""`/docs`: the API page, Swagger UI over `/openapi.json`, from the files of the pinned
`swagger-ui-bundle-v2` package (served from here: no CDN, works offline)."""

from __future__ import annotations

from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

from api.contract import endpoint

bp = Blueprint("docs", __name__, static_folder=str(swagger_ui_path), static_url_path="/docs/assets")

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>llmgw API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis]
    });
  </script>
</body>
</html>
"""


@endpoint(
    bp,
    "GET",
    "/docs",
    summary="This API, as a readable page (Swagger UI over /openapi.json)",
    tag="meta",
    operation_id="getDocs",
    media_type="text/html",
    auth="none",
)
def docs():
    return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}
