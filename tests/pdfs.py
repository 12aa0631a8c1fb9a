"""Build small real PDFs for tests: text pages, encrypted, truncated, slow to read; and the parts of one."""
from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter


def text_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of text per page (Helvetica), with a correct xref table."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_ref = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_ref} 0 R >> >> >>".encode())
        objects.append(stream(f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return assemble(objects)


def stream(data: bytes, entries: str = "") -> bytes:
    """A stream object's body: its dictionary (with a correct /Length) and its data."""
    return f"<< /Length {len(data)} {entries}>>\nstream\n".encode() + data + b"\nendstream"


def assemble(objects: list[bytes], trailer: str = "/Root 1 0 R", header: bytes = b"%PDF-1.4\n") -> bytes:
    """A PDF file of `objects` (numbered from 1) with a correct xref table and `trailer` entries."""
    out = io.BytesIO()
    out.write(header)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} {trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def encrypted_pdf(pages: list[str], password: str = "secret") -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf(pages))))
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncated_pdf(pages: list[str]) -> bytes:
    data = text_pdf(pages)
    return data[: len(data) // 3]


def repeated_page_pdf(pages: int, lines: int) -> bytes:
    """A small file that is slow to read: one page of `lines` lines of text, listed `pages` times."""
    content = stream(b"BT /F1 12 Tf 72 720 Td " + b"(word) Tj 0 -1 Td " * lines + b"ET")
    return assemble([b"<< /Type /Catalog /Pages 2 0 R >>",
                     f"<< /Type /Pages /Kids [{' '.join(['5 0 R'] * pages)}] /Count {pages} >>".encode(),
                     b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", content,
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                     b"/Resources << /Font << /F1 3 0 R >> >> >>"])
