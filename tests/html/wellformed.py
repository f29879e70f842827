#!/usr/bin/env python3
"""Checks that a report.html is well-formed and self-contained: every element
closed in order (HTML void elements aside), no script, no event-handler
attribute, nothing loaded from elsewhere, and the SVG figures present.

usage: wellformed.py REPORT.html [TEXT ...]   (each TEXT must appear in the page's text)
Exit 0 when all holds, 1 otherwise."""
import sys
from html.parser import HTMLParser

VOID = {"meta", "br", "img", "hr", "link", "input", "col", "area", "base", "wbr", "source", "track", "embed", "param"}
SVG_LEAVES = {"rect", "polyline", "line", "circle", "path"}  # may be written self-closing


class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.text, self.svgs = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.problems.append("a <script> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event-handler attribute {name} on <{tag}>")
            if name in ("src", "href", "xlink:href") or (value or "").lstrip().lower().startswith(("http:", "https:", "//")):
                self.problems.append(f"<{tag} {name}={value!r}> refers to something outside the page")
        self.svgs += tag == "svg"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def main():
    page = open(sys.argv[1], encoding="utf-8").read()
    c = Check()
    c.feed(page)
    c.close()
    if c.stack:
        c.problems.append(f"unclosed elements: {c.stack}")
    if not page.startswith("<!DOCTYPE html>"):
        c.problems.append("no <!DOCTYPE html>")
    text = "".join(c.text)
    for want in sys.argv[2:]:
        if want not in text:
            c.problems.append(f"the page's text lacks {want!r}")
    for p in c.problems:
        print(f"{sys.argv[1]}: {p}")
    print(f"{sys.argv[1]}: {len(page)} bytes, {c.svgs} SVG figures, {len(c.problems)} problems")
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
