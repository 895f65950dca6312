"""Escaping for the generated pages: every text from a YAML file goes through `text()`.

Generated pages are markdown whose content sits in raw HTML blocks, which Python-Markdown
passes through untouched. `text()` HTML-escapes a value and also turns the characters that
markdown, Jinja-style templates (`{{ }}`, `{% %}`) and table syntax give meaning to into
numeric character references, so a title stays plain text even if a later plugin or a
markdown extension looks at the block. The browser shows the references as the characters.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

# Characters with meaning to HTML, and to markdown, its extensions or template engines, as
# references, in one pass: escaping HTML first would put a '#' ("&#x27;") in front of this
# table, which would then turn an apostrophe into the visible text "&#x27;".
_NEUTRAL = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#x27;",
        **{ch: f"&#{ord(ch)};" for ch in "{}[]()`*_\\|~^$!#:"},
    }
)


def text(value: object) -> str:
    """`value` as HTML text that no markdown, template or browser will read as markup."""
    return str(value).translate(_NEUTRAL)


def url_attr(url: str) -> str:
    """A URL for a double-quoted href: HTML-escaped, braces percent-encoded (no `{{ }}`)."""
    return html.escape(url, quote=True).replace("{", "%7B").replace("}", "%7D")


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) address, else None: no javascript: or data: links."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in {"http", "https"} else None


def link(href: str, label: str, *, css: str = "", external: bool = False) -> str:
    """An anchor to a page of this site: `label` is already-escaped HTML, `href` is ours."""
    cls = f' class="{css}"' if css else ""
    rel = ' rel="noopener"' if external else ""
    return f'<a href="{url_attr(href)}"{cls}{rel}>{label}</a>'


def external(url: str | None, label: str, *, css: str = "") -> str:
    """A link to an outside page, or the escaped URL text when it is not a safe http(s) URL."""
    checked = safe_url(url)
    if checked is None:
        return f"<code>{text(url or '')}</code>"
    cls = f' class="{css}"' if css else ""
    return f'<a href="{url_attr(checked)}"{cls} rel="noopener">{label}</a>'
