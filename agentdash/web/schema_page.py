"""The OpenAPI viewer of both ports, rendered here from the schema: Litestar's own viewers (Scalar, Swagger,
Redoc, Stoplight, RapiDoc) load their scripts, styles and favicon from CDNs, which an offline or locked-down
network cannot reach and which would see every visit."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, YamlRenderPlugin

METHODS = ("get", "put", "post", "patch", "delete", "head", "options")
# The viewers' usual paths still answer, with this page, so that an old bookmark does not 404.
VIEWER_PATHS = ("/", "/swagger", "/redoc", "/elements", "/rapidoc", "/scalar")
STYLE = """<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1f2937 }
h2 { margin-top: 2rem } code { font: 13px ui-monospace, monospace } table { border-collapse: collapse; width: 100% }
td, th { border-bottom: 1px solid #e5e7eb; padding: .4rem .5rem; text-align: left; vertical-align: top }
.m { font-weight: 600; text-transform: uppercase; width: 5rem } .muted { color: #6b7280 }
</style>"""


class SchemaPage(OpenAPIRenderPlugin):
    """A plain HTML list of the operations, their parameters and answers, linking the JSON and YAML schema."""

    def __init__(self) -> None:
        super().__init__(path=list(VIEWER_PATHS), favicon="", style=STYLE)

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        title = escape(str(info.get("title", "API")))
        json_url = escape(self.get_openapi_json_route(request))
        rows = []
        for path, item in sorted(openapi_schema.get("paths", {}).items()):
            for method in METHODS:
                if (operation := item.get(method)) is not None:
                    rows.append(_operation_row(method, path, operation))
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>{self.style}</head>"
            f"<body><h1>{title} <span class='muted'>{escape(str(info.get('version', '')))}</span></h1>"
            f"<p>The schema: <a href='{json_url}'>openapi.json</a> · <a href='{json_url.removesuffix('.json')}.yaml'>openapi.yaml</a>"
            f" (load it into any OpenAPI tool).</p><h2>Operations</h2><table><tr><th>method</th><th>path</th>"
            f"<th>what</th><th>parameters</th><th>answers</th></tr>{''.join(rows)}</table></body></html>"
        ).encode()


def _operation_row(method: str, path: str, operation: dict[str, Any]) -> str:
    params = [f"<code>{escape(str(p.get('name')))}</code> ({escape(str(p.get('in')))}"
              f"{', required' if p.get('required') else ''})" for p in operation.get("parameters", [])]  # fmt: skip
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        params.append("body: " + ", ".join(f"<code>{escape(kind)}</code>" for kind in body))
    answers = [f"<code>{escape(str(code))}</code> {escape(str(answer.get('description', '')))}"
               for code, answer in sorted(operation.get("responses", {}).items())]  # fmt: skip
    what = escape(str(operation.get("summary", "")))
    if description := operation.get("description"):
        what += f"<div class='muted'>{escape(str(description))}</div>"
    return (f"<tr><td class='m'>{method}</td><td><code>{escape(path)}</code></td><td>{what}</td>"
            f"<td>{'<br>'.join(params)}</td><td>{'<br>'.join(answers)}</td></tr>")  # fmt: skip


def offline_openapi() -> list[OpenAPIRenderPlugin]:
    """The render plugins of an OpenAPIConfig: this page, and the schema as JSON and YAML."""
    return [SchemaPage(), JsonRenderPlugin(), YamlRenderPlugin()]
