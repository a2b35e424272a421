"""Self-contained HTML pages from the project's Markdown reports.

Every report is written as Markdown first (readable on GitHub, diffable); this
module turns it into one HTML file with every local image embedded as a
``data:`` URI, so the page can be mailed or archived alone.  The converter
handles the Markdown the reports use (headings, paragraphs, lists, pipe tables,
block quotes, images, links, fenced code, inline code, bold/italic); anything else
is shown as text.  Images that cannot be found are replaced by a visible note instead of a
broken link.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from pathlib import Path

from beyondsgd.bench.io import write_atomic

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto} code{background:#f4f4f4;padding:0 .2em;border-radius:3px}
pre{background:#f4f4f4;padding:.8em;overflow-x:auto} .missing{color:#b00;font-style:italic}
blockquote{margin:1em 0;padding:.1em 1em;border-left:4px solid #ccc;color:#444}
"""

_IMG = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_ITAL = re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline(text: str, base: Path) -> str:
    """Escape ``text`` and render inline Markdown; local images become data URIs."""
    codes: list[str] = []

    def keep_code(m: re.Match) -> str:
        codes.append(f"<code>{html.escape(m.group(1))}</code>")
        return f"\x00{len(codes) - 1}\x00"

    text = _CODE.sub(keep_code, text)
    parts: list[str] = []
    pos = 0
    for m in _IMG.finditer(text):
        parts.append(_inline_plain(text[pos : m.start()]))
        alt, src = m.group(1), m.group(2)
        if re.match(r"^(https?:|data:)", src):
            parts.append(f'<img alt="{html.escape(alt)}" src="{html.escape(src)}">')
        elif (base / src).is_file():
            parts.append(f'<img alt="{html.escape(alt)}" src="{_data_uri(base / src)}">')
        else:
            parts.append(f'<span class="missing">[image not found: {html.escape(src)}]</span>')
        pos = m.end()
    parts.append(_inline_plain(text[pos:]))
    out = "".join(parts)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _inline_plain(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    return _ITAL.sub(r"<em>\1</em>", text)


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def markdown_to_html(markdown: str, base: str | Path = ".", title: str = "beyondsgd report") -> str:
    """Convert a report's Markdown to a complete, self-contained HTML page.

    Args:
        markdown: the Markdown text.
        base: folder that relative image paths are resolved against.
        title: the page title.
    """
    base = Path(base)
    lines = markdown.splitlines()
    out: list[str] = []
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{_inline(' '.join(para), base)}</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1 : j]))}</code></pre>")
            i = j + 1
            continue
        if not s:
            flush()
        elif m := re.match(r"^(#{1,6})\s+(.*)$", s):
            flush()
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2), base)}</h{n}>")
        elif s.startswith(">"):
            # A block quote (the reports' verdict and tie rules): its lines, without the marker,
            # as one paragraph.
            flush()
            quoted: list[str] = []
            j = i
            while j < len(lines) and lines[j].strip().startswith(">"):
                quoted.append(lines[j].strip()[1:].strip())
                j += 1
            out.append(f"<blockquote><p>{_inline(' '.join(q for q in quoted if q), base)}</p></blockquote>")
            i = j
            continue
        elif s.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?\s*:?-{2,}", lines[i + 1].strip()):
            flush()
            head = _cells(s)
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                rows.append(_cells(lines[j]))
                j += 1
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th>{_inline(c, base)}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{_inline(c, base)}</td>" for c in r) + "</tr>" for r in rows)
                + "</tbody></table>"
            )
            i = j
            continue
        elif re.match(r"^([-*]|\d+\.)\s+", s):
            flush()
            ordered = bool(re.match(r"^\d+\.", s))
            items: list[str] = []
            j = i
            while j < len(lines) and (
                re.match(r"^\s*([-*]|\d+\.)\s+", lines[j]) or (lines[j].startswith("  ") and lines[j].strip() and items)
            ):
                if re.match(r"^\s*([-*]|\d+\.)\s+", lines[j]):
                    items.append(re.sub(r"^\s*([-*]|\d+\.)\s+", "", lines[j]))
                else:
                    items[-1] += " " + lines[j].strip()
                j += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(it, base)}</li>" for it in items) + f"</{tag}>")
            i = j
            continue
        else:
            para.append(s)
        i += 1
    flush()
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )


def write_html_report(markdown_path: str | Path, html_path: str | Path | None = None, title: str | None = None) -> Path:
    """Write ``report.html`` (default: next to ``markdown_path``) with every image embedded."""
    markdown_path = Path(markdown_path)
    html_path = Path(html_path) if html_path else markdown_path.with_suffix(".html")
    text = markdown_path.read_text()
    if title is None:
        first = next((ln for ln in text.splitlines() if ln.startswith("# ")), "# beyondsgd report")
        title = first[2:].strip()
    return write_atomic(html_path, markdown_to_html(text, markdown_path.parent, title))
