"""The links of an HTML page, for the tests that crawl the operator's pages."""

from html.parser import HTMLParser


class _Links(HTMLParser):
    def __init__(self, prefixes):
        super().__init__()
        self.prefixes = prefixes
        self.hrefs = set()

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href and href.startswith(self.prefixes):
            self.hrefs.add(href)


def links(html, prefixes):
    """The targets of the page's <a href>s that start with one of `prefixes` (a tuple)."""
    parser = _Links(prefixes)
    parser.feed(html)
    return parser.hrefs
