"""mkdocs hook: the README is the site's home page.

``docs/index.md`` holds only a marker; this hook puts the README's text in its
place, so the landing text lives in one file. The README links to
``docs/x.md`` (right on GitHub and in a checkout); on the site the home page
sits inside ``docs/``, so those links lose the prefix.
"""

import re
from pathlib import Path

MARKER = "<!-- the README, inserted by tools/mkdocs_hooks.py -->"
_DOCS_LINK = re.compile(r"\]\(docs/")


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "index.md" and MARKER in markdown:
        readme = (Path(config["config_file_path"]).parent / "README.md").read_text(encoding="utf-8")
        return markdown.replace(MARKER, _DOCS_LINK.sub("](", readme))
    return markdown
