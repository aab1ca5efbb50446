#!/usr/bin/env python3
"""Gemma 3 tokenizer goldens from llama.cpp (through llama-cpp-python) on the real GGUF.

llama.cpp loads the vocabulary of .cache/models/gemma-3-270m-q4_k_m.gguf (vocab_only: no weights)
and tokenizes every case with llama_tokenize(add_special=True, parse_special=...), so BOS (id 2) is
prepended exactly as llama.cpp does for this model (tokenizer.ggml.add_bos_token = true). Each case
is also detokenized with llama_detokenize (remove_special=False, unparse_special=<same flag>) after
dropping the BOS. llama.cpp shares no code with tern.

Output (format in tests/goldens/README.md, section "gemma3_tokenizer_cases.tsv"):
  tests/goldens/gemma3_tokenizer_cases.tsv

The cases are (1) every string of tests/goldens/tokenizer_cases.tsv (the SmolLM2 BPE goldens: the
same 282 texts, read from their hex), then (2) cases aimed at SentencePiece-with-byte-fallback and
Gemma's vocabulary (user-defined whitespace and HTML tokens, byte fallback, invalid UTF-8, control
characters), all with parse_special=false, then (3) a chat set with parse_special=true.

Environment: the benchmark venv (llama-cpp-python 0.3.36 built from source):
  bench/peer/setup_venv.sh
  .venv-bench/bin/python tests/goldens/make_gemma_tokenizer_goldens.py
Takes a few seconds; deterministic.
"""
import ctypes
import os
import sys

import llama_cpp

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GGUF = os.path.join(REPO, ".cache", "models", "gemma-3-270m-q4_k_m.gguf")
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
BPE_CASES = os.path.join(OUT_DIR, "tokenizer_cases.tsv")
OUT = os.path.join(OUT_DIR, "gemma3_tokenizer_cases.tsv")
# The llama.cpp commit vendored in the llama-cpp-python 0.3.36 sdist (git HEAD of its vendor/llama.cpp;
# the Python package does not expose it).
LLAMA_CPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"


def bpe_cases():
    """The SmolLM2 goldens' texts: [(name, bytes)]."""
    out = []
    with open(BPE_CASES, encoding="ascii") as f:
        for line in f:
            if line.startswith("#"):
                continue
            name, hx = line.rstrip("\n").split("\t")[:2]
            out.append((name, b"" if hx == "-" else bytes.fromhex(hx)))
    return out


def gemma_cases():
    """Cases for SentencePiece + byte fallback + Gemma's user-defined tokens: [(name, bytes)]."""
    c = []

    def add(name, text):
        c.append(("g_" + name, text.encode("utf-8") if isinstance(text, str) else text))

    # Whitespace: Gemma has user-defined tokens for 2..31 spaces, 1..31 newlines, 1..31 tabs, which
    # llama.cpp splits out of the text before the SentencePiece merge (longest match first).
    for n in (1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 40, 64):
        add(f"spaces_{n}", " " * n)
    for n in (1, 2, 3, 5, 8, 31, 32, 33, 50):
        add(f"newlines_{n}", "\n" * n)
    for n in (1, 2, 4, 31, 32, 35):
        add(f"tabs_{n}", "\t" * n)
    for n in (1, 2, 3, 5, 9):
        add(f"word_spaces_{n}_word", "a" + " " * n + "b")
        add(f"word_newlines_{n}_word", "Hello" + "\n" * n + "world")
    add("lead_space", " hello")
    add("lead_spaces_3", "   hello")
    add("trail_space", "hello ")
    add("trail_spaces_3", "hello   ")
    add("lead_trail_spaces", "  hello world  ")
    add("space_newline_mix", " \n \n\n  \n\t \t\n")
    add("crlf_runs", "line1\r\nline2\r\n\r\nline3\r")
    add("tab_indent_code", "if x:\n\treturn 1\n\t\telse:\n\t\t\treturn 2\n")
    add("space_indent_code", "def f():\n    if x:\n        return 1\n    return 2\n")
    add("nbsp_and_friends", "a\u00a0b\u2009c\u3000d\u200be\ufeff")
    add("only_punct_spaces", " . , ; : ! ? ")

    # Digits and numbers (SentencePiece with single-digit pieces).
    for i, s in enumerate(["0", "7", "42", "123", "2025", "1000000", "3.14159", "-273.15", "1e-9",
                           "0x1F", "12,345,678.90", "99.9%", "2025-12-06T13:50:00Z", "+1 (555) 010-9999",
                           "3141592653589793238462643383279502884197", "v1.2.3-rc4", "½ ⅓ ¼", "٣٤٥",
                           "१२३", "１２３", "①②③", "x² + y³"]):
        add(f"num_{i:02d}", s)

    # Code.
    add("py_fn", "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")
    add("py_dict", "d = {'a': 1, \"b\": [2, 3], 'c': None}  # comment\nprint(f\"{d!r:>10}\")\n")
    add("c_main", "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n")
    add("c_ptr", "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }")
    add("cpp_template", "template <typename T, size_t N> std::array<T, N> make() { return {}; }")
    add("json_obj", '{"name": "tern", "version": [0, 1, 2], "ok": true, "pi": 3.14, "none": null}')
    add("json_nested", '{\n  "a": {\n    "b": [\n      {"c": "\\u00e9\\n"}\n    ]\n  }\n}')
    add("js_arrow", "const f = (a, b) => a ?? b; // nullish\nexport default f;")
    add("rust_fn", "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }")
    add("shell", "for f in *.gguf; do sha256sum \"$f\" | tee -a sums.txt; done && echo ok || exit 1")
    add("sql", "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;")
    add("html_doc", "<html><body><h1>Title</h1><p>Text &amp; more</p></body></html>")
    add("html_table", "<table><tr><th>a</th><td>1</td></tr></table>")
    add("html_inline", "<b>bold</b> <i>it</i> <code>x</code> <s>old</s> <sup>2</sup><sub>i</sub>")
    add("html_lookalike", "<table border=1><TR><h7></h1 >< b>")
    add("markdown", "# Title\n\n- item *one*\n- item **two**\n\n```python\nx = 1\n```\n")
    add("latex", "\\frac{a}{b} + \\sum_{i=0}^{n} x_i^2 = \\int_0^1 f(x)\\,dx")
    add("regex", r"^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@(?:\w+\.)+[a-z]{2,}$")

    # Scripts.
    add("zh", "机器学习模型在边缘设备上运行。")
    add("ja", "東京は日本の首都です。カタカナとひらがな。")
    add("ko", "안녕하세요, 세계! 한국어 텍스트입니다.")
    add("zh_ext_b", "𠀀𠀁𪚥")
    add("ar", "مرحبا بالعالم، هذا نص عربي.")
    add("ar_diacritics", "بِسْمِ اللَّهِ الرَّحْمَٰنِ")
    add("he", "שלום עולם")
    add("hi", "नमस्ते दुनिया, यह हिंदी पाठ है।")
    add("hi_conjuncts", "क्षत्रिय द्वारा श्रृंखला")
    add("bn", "আমি বাংলায় গান গাই")
    add("ta", "தமிழ் மொழி")
    add("th", "สวัสดีชาวโลก")
    add("ru", "Привет, мир! Ёжик в тумане.")
    add("el", "Γειά σου Κόσμε· αβγ ΑΒΓ")
    add("am", "ሰላም ለዓለም")
    add("ka", "გამარჯობა")
    add("bidi_mix", "abc שלום 123 مرحبا xyz")

    # Emoji.
    add("emoji_simple", "I love 🍕 and 🎉!")
    add("emoji_zwj_family", "👨\u200d👩\u200d👧\u200d👦")
    add("emoji_zwj_prof", "👩🏽\u200d💻 👨🏿\u200d🚀")
    add("emoji_skin_tones", "👍🏻👍🏼👍🏽👍🏾👍🏿")
    add("emoji_flags", "🇫🇷🇯🇵🇺🇸 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f")
    add("emoji_keycap_vs", "1️⃣ #️⃣ ❤️ ❤︎ ☺")
    add("emoji_run", "😀😃😄😁😆😅🤣😂")
    add("emoji_rare", "🫠🫨🪿🫎")

    # Combining marks and normalization (SentencePiece in llama.cpp does no normalization).
    add("nfc", "caf\u00e9 na\u00efve")
    add("nfd", "cafe\u0301 nai\u0308ve")
    add("lone_combining", "\u0301\u0308 x\u0323\u0307")
    add("zalgo", "Z\u0351\u036b\u0343a\u0310\u0344l\u0351g\u0312o\u0357")
    add("hangul_jamo", "\u1100\u1161\u11a8")
    add("fullwidth", "ＡＢＣａｂｃ！？")
    add("ligatures", "ﬁﬂ ﬀ Ǆ ǅ")

    # Byte fallback: characters with no piece of their own.
    add("pua_bmp", "\ue000\uf8ff")
    add("pua_plane15", "\U000f0000\U000ffffd")
    add("max_codepoint", "\U0010ffff")
    add("noncharacters", "\ufffe\uffff\ufdd0")
    add("replacement_char", "\ufffd")
    add("hieroglyphs", "𓀀𓁐𓂀")
    add("linear_b", "𐀀𐀁")
    add("cuneiform", "𒀀𒀁")
    add("math_alnum", "𝔸𝕓𝒸𝓭 𝟘𝟙")
    add("rare_mixed", "a\U0001d11eb\U00010348c")
    add("control_nul", "a\x00b")
    add("control_c0", "".join(chr(i) for i in range(1, 32) if i not in (9, 10, 13)))
    add("control_del", "x\x7fy")
    add("control_c1", "\u0080\u0085\u009f")
    add("bom_lead", "\ufeffhello")
    add("soft_hyphen", "co\u00adop\u00ader\u00adate")
    add("zero_width", "a\u200bb\u200cc\u200dd\u2060e")
    add("bidi_controls", "\u202eabc\u202c \u2066x\u2069")
    add("variation_sel", "⌛\ufe0e⌛\ufe0f 邊\U000e0100")

    # Strings that look like special or user-defined tokens (plain text mode: CONTROL tokens are
    # ordinary text; USER_DEFINED ones such as <b> still match, see README).
    for i, s in enumerate(["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
                           "<start_of_image>", "<end_of_image>", "<unused0>", "<unused6241>", "[multimodal]",
                           "<start_of_turn>user\nHi<end_of_turn>\n", "<start_of_tur", "< start_of_turn>",
                           "<START_OF_TURN>", "<<bos>>", "<0x41>", "<0xZZ>", "▁", "▁▁hello", "</s>", "<s>",
                           "<|im_start|>", "<|endoftext|>"]):
        add(f"special_text_{i:02d}", s)

    # Long inputs.
    add("long_word", "Pneumonoultramicroscopicsilicovolcanoconiosis" * 3)
    add("long_repeat_a", "a" * 300)
    add("long_repeat_emoji", "🙂" * 50)
    add("long_mixed", ("The quick brown fox 狐狸 jumps over 42 lazy dogs 🐕. " * 12).strip())

    # Invalid UTF-8 (bytes, not str). What llama.cpp does with them is in the README.
    inv = [
        ("lone_cont", b"\x80"),
        ("lone_cont_run", b"\x80\x81\xbf"),
        ("lone_lead_end", b"abc\xc3"),
        ("lone_lead_mid", b"a\xc3b"),
        ("lead3_then_ascii", b"\xe4ab cd"),
        ("lead4_then_ascii", b"\xf0abc def"),
        ("truncated_emoji", b"hi \xf0\x9f\x98"),
        ("truncated_emoji_mid", b"\xf0\x9f\x98 ok"),
        ("overlong_slash", b"\xc0\xaf"),
        ("overlong_nul", b"a\xc0\x80b"),
        ("surrogate_cesu", b"\xed\xa0\x80\xed\xb0\x80"),
        ("ff_fe", b"\xff\xfe"),
        ("f5_lead", b"\xf5\x80\x80\x80"),
        ("five_byte", b"\xf8\x88\x80\x80\x80"),
        ("latin1_text", "café naïve".encode("latin-1")),
        ("valid_invalid_mix", "ok ".encode() + b"\xe9" + " é ".encode() + b"\x9f" + " 🙂".encode()),
        ("invalid_before_special", b"\x80<start_of_turn>"),
        ("cont_after_emoji", "🙂".encode() + b"\x80\x80"),
    ]
    for n, b in inv:
        add("invalid_" + n, b)
    return c


def special_cases():
    """Chat-formatted text tokenized with parse_special=true: [(name, bytes)]."""
    c = []

    def add(name, text):
        c.append(("chat_" + name, text.encode("utf-8") if isinstance(text, str) else text))

    add("user_turn", "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n")
    add("two_turns", "<start_of_turn>user\nHi!<end_of_turn>\n<start_of_turn>model\nHello! How can I help?"
        "<end_of_turn>\n<start_of_turn>user\nWrite a haiku.<end_of_turn>\n<start_of_turn>model\n")
    add("system_in_user", "<start_of_turn>user\nYou are terse.\n\nExplain rope.<end_of_turn>\n<start_of_turn>model\n")
    add("unicode_turn", "<start_of_turn>user\n日本語で答えて 🙂<end_of_turn>\n<start_of_turn>model\n")
    add("code_turn", "<start_of_turn>user\n```py\nprint('hi')\n```<end_of_turn>\n<start_of_turn>model\n")
    add("empty_turn", "<start_of_turn>user\n<end_of_turn>\n<start_of_turn>model\n")
    add("model_reply_eos", "<start_of_turn>model\nParis.<end_of_turn><eos>")
    add("bos_in_text", "<bos><start_of_turn>user\nhi<end_of_turn>")
    add("adjacent", "<start_of_turn><end_of_turn><start_of_turn>")
    add("all_control", "<pad><eos><bos><unk><mask>")
    add("space_around", " <start_of_turn> user \n <end_of_turn> ")
    add("newlines_around", "\n\n<start_of_turn>\n\n\n<end_of_turn>\n\n")
    add("partial", "<start_of_turn <end_of_turn><start_of_turnx>")
    add("image_tokens", "<start_of_turn>user\n<start_of_image><end_of_image>describe<end_of_turn>")
    add("unused", "<unused0><unused1>x<unused6241>")
    add("html_and_turn", "<start_of_turn>user\n<table><tr><td>1</td></tr></table><end_of_turn>\n")
    add("lookalike_case", "<START_OF_TURN>user\n<End_of_turn>")
    add("nested_brackets", "<<start_of_turn>>")
    add("special_mid_word", "abc<start_of_turn>def")
    add("invalid_utf8_in_turn", b"<start_of_turn>user\n\xff\xfe<end_of_turn>\n")
    add("plain_no_special", "Just text, no turns.")
    add("empty", "")
    return c


class Vocab:
    def __init__(self, path):
        self.llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)

    def tokenize(self, text: bytes, special: bool):
        n_max = len(text) + 8
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self.vocab, text, len(text), buf, n_max, True, special)
        assert n >= 0, (text, n)
        return list(buf[:n])

    def detokenize(self, ids, special: bool) -> bytes:
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        cap = 64 * len(ids) + 16
        out = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), out, cap, False, special)
        assert 0 <= n <= cap, n
        return out.raw[:n]


def hex_or_dash(b):
    return b.hex() if b else "-"


def ids_or_dash(ids):
    return " ".join(str(i) for i in ids) if ids else "-"


def main():
    v = Vocab(GGUF)
    bos = llama_cpp.llama_vocab_bos(v.vocab)
    cases = [(n, t, 0) for n, t in bpe_cases()] + [(n, t, 0) for n, t in gemma_cases()] \
        + [(n, t, 1) for n, t in special_cases()]
    names = [n for n, _, _ in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    lines = []
    n_rt = 0
    for name, text, special in cases:
        ids = v.tokenize(text, bool(special))
        assert ids and ids[0] == bos, (name, ids)
        assert all(0 <= i < v.n_vocab for i in ids)
        detok = v.detokenize(ids[1:], bool(special))
        rt = int(detok == text)
        n_rt += rt
        lines.append(f"{name}\t{hex_or_dash(text)}\t{special}\t{len(ids)}\t{ids_or_dash(ids)}\t"
                     f"{hex_or_dash(detok)}\t{rt}\n")
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write("# tern Gemma 3 tokenizer goldens: made by tests/goldens/make_gemma_tokenizer_goldens.py\n")
        f.write(f"# llama.cpp via llama-cpp-python {llama_cpp.__version__} (llama.cpp {LLAMA_CPP_COMMIT[:10]}); "
                f"vocab of .cache/models/gemma-3-270m-q4_k_m.gguf ({v.n_vocab} ids, BOS {bos})\n")
        f.write("# ids = llama_tokenize(text, add_special=true, parse_special=<special>): BOS first;"
                " detok = llama_detokenize(ids without the BOS, remove_special=false, unparse_special=<special>)\n")
        f.write("# fields (tab-separated): name, text_hex ('-' if empty), special (0/1), n_ids, ids"
                " (space-separated), detok_hex ('-' if empty), roundtrip (1 if detok == text byte for byte)\n")
        f.write(f"# {len(cases)} cases ({sum(1 for c in cases if c[2])} with special=1), {n_rt} round-trip\n")
        f.writelines(lines)
    print(f"{len(cases)} cases, {n_rt} round-trip -> {OUT}")


if __name__ == "__main__":
    sys.exit(main())
