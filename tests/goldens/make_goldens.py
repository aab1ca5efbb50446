#!/usr/bin/env python3
"""Makes tern's independent-reference goldens with Hugging Face transformers.

transformers loads the SAME GGUF file the runtime packs
(.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf), dequantizes every tensor to
float32 (Q4_1: d*q + m, Q8_0: d*q, both with f16 scales widened to f32) and
runs its own PyTorch Llama. That is the reference the int4/int8 runtime
approximates. Nothing here shares code with tern.

Outputs (formats in tests/goldens/README.md):
  tests/goldens/tokenizer_cases.tsv        text -> token ids (no special tokens added)
  tests/goldens/model_greedy.tsv           prompt ids, greedy continuation, per-step gaps
  tests/goldens/model_teacher_forced.tsv   per-position top-1, logp(next), gap, top-5
  tests/goldens/model_continuations.txt    the same, decoded, for humans

Make the venv (once; CPU torch is enough):
  python3 -m venv .cache/venv-ref
  .cache/venv-ref/bin/pip install -r tests/goldens/requirements.txt
Run from the repo root, offline:
  HF_HUB_OFFLINE=1 .cache/venv-ref/bin/python tests/goldens/make_goldens.py
The run takes about 3 minutes on 2 shared cores and is deterministic (greedy, float32).
"""

import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer, pre_tokenizers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_DIR = os.path.join(REPO, ".cache", "models")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

N_GEN = 64   # greedy tokens per prompt (fewer if the model emits <|im_end|>)
TOP_K = 5    # top-k ids/logps kept per teacher-forced position


# --------------------------------------------------------------------------
# Tokenizer cases
# --------------------------------------------------------------------------

def tokenizer_cases():
    """Returns [(name, text)] covering the scripts and edge cases the BPE must get right."""
    c = []

    def add(name, text):
        c.append((name, text))

    add("empty", "")
    add("space", " ")
    add("two_spaces", "  ")
    add("newline", "\n")
    add("tab", "\t")

    ascii_sentences = [
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "What is the capital of France?",
        "I like to eat apples and bananas.",
        "Once upon a time, there was a little robot who wanted to learn how to paint.",
        "This is a test of the tokenizer.",
        "Machine learning models run on edge devices.",
        "She sells sea shells by the sea shore.",
        "HELLO WORLD, THIS IS ALL CAPS.",
        "camelCaseIdentifier and snake_case_identifier and kebab-case-identifier",
        "e-mail: someone@example.com, web: https://example.org/path?q=1&r=two#frag",
        "Mr. Smith went to Washington D.C. on Jan. 5th, 2021.",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        "A",
        "a",
        "Hi",
        " Hello",
        "Hello ",
        " Hello ",
        "hello\nworld",
        "The year 1999 was followed by 2000.",
        "It costs $3.50 (or 3,50 EUR) — about 10% more.",
        "\"Quoted text\" and 'single quoted' and `backticks`.",
        "Question? Answer! Ellipsis... Interrobang?!",
    ]
    for i, s in enumerate(ascii_sentences):
        add(f"ascii_{i:02d}", s)

    latin = [
        ("fr_0", "Le cœur a ses raisons que la raison ne connaît point."),
        ("fr_1", "Où est la bibliothèque ? C'est à côté de l'église."),
        ("fr_2", "Ça va très bien, merci ! Élève, garçon, naïve, Noël."),
        ("de_0", "Größe, Straße, Übung, Ärger, Öl und süß."),
        ("de_1", "Der Donaudampfschifffahrtsgesellschaftskapitän fährt über den Fluss."),
        ("de_2", "Grüß Gott! Wie geht's dir heute?"),
        ("vi_0", "Tiếng Việt có nhiều dấu thanh: à á ả ã ạ."),
        ("vi_1", "Xin chào, tôi tên là Nguyễn Văn Thành."),
        ("vi_2", "Hà Nội là thủ đô của Việt Nam."),
        ("pl_0", "Zażółć gęślą jaźń."),
        ("pl_1", "Łódź, Kraków, Gdańsk i Wrocław to piękne miasta."),
        ("pl_2", "Chrząszcz brzmi w trzcinie w Szczebrzeszynie."),
        ("es_0", "¿Dónde está el niño? ¡Mañana será otro día!"),
        ("pt_0", "Não sei se ele vai à festa amanhã."),
        ("cs_0", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
        ("tr_0", "İstanbul'da çok güzel bir gün, değil mi?"),
        ("is_0", "Þetta er íslenska með ð og þ."),
        ("ro_0", "Știință și țară în limba română."),
        ("nfd_e_acute", "e\u0301cole caf\u0065\u0301"),
        ("nfc_vs_nfd", "\u00e9 vs e\u0301"),
    ]
    for n, s in latin:
        add(n, s)

    cjk = [
        ("zh_0", "你好，世界！"),
        ("zh_1", "我喜欢学习人工智能和机器学习。"),
        ("zh_2", "北京是中华人民共和国的首都。"),
        ("zh_trad", "繁體中文與簡體中文不同。"),
        ("ja_0", "こんにちは、世界！"),
        ("ja_1", "私は東京に住んでいます。"),
        ("ja_2", "カタカナとひらがなと漢字を混ぜた文です。"),
        ("ja_halfwidth", "ｶﾀｶﾅ ﾃｽﾄ"),
        ("ko_0", "안녕하세요, 세계!"),
        ("ko_1", "한국어 토크나이저 테스트입니다."),
        ("ko_jamo", "\u1100\u1161\u11a8"),
        ("cjk_mixed", "English 中文 日本語 한국어 mixed."),
        ("cjk_fullwidth_punct", "「引用」『二重』（括弧）【強調】"),
        ("cjk_ext_b", "𠀀𠀁𪚥"),
    ]
    for n, s in cjk:
        add(n, s)

    emoji = [
        ("emoji_single", "😀"),
        ("emoji_run", "😀😃😄😁😆"),
        ("emoji_in_text", "I love pizza 🍕 and coffee ☕!"),
        ("emoji_zwj_family", "👨‍👩‍👧‍👦"),
        ("emoji_zwj_profession", "👩‍💻 👨‍🚀 🧑‍🔬"),
        ("emoji_zwj_rainbow_flag", "🏳️‍🌈"),
        ("emoji_flags", "🇫🇷🇩🇪🇯🇵🇺🇸🇻🇳"),
        ("emoji_flag_spaced", "France 🇫🇷 Germany 🇩🇪"),
        ("emoji_skin_tones", "👍🏻👍🏼👍🏽👍🏾👍🏿"),
        ("emoji_skin_zwj", "🧑🏽‍🤝‍🧑🏿"),
        ("emoji_keycap", "1️⃣ 2️⃣ #️⃣"),
        ("emoji_variation", "❤️ ❤ ☺️ ✔️"),
        ("emoji_tag_sequence", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"),
    ]
    for n, s in emoji:
        add(n, s)

    digits = "12345678901234567890"
    for k in range(1, 21):
        add(f"digits_{k:02d}", digits[:k])
    mixed_digits = [
        ("digits_space_lead", " 42"),
        ("digits_in_words", "abc123def456"),
        ("digits_version", "v1.2.3-rc4"),
        ("digits_decimal", "3.14159265358979"),
        ("digits_thousands", "1,000,000 and 1 000 000 and 1_000_000"),
        ("digits_negative", "-273.15°C"),
        ("digits_date", "2024-02-29T23:59:59Z"),
        ("digits_phone", "+1 (555) 123-4567"),
        ("digits_hex", "0xDEADBEEF 0x1f 0b1010"),
        ("digits_sci", "6.022e23 1e-9 1E+10"),
        ("digits_ordinal", "1st 2nd 3rd 4th 21st 100th"),
        ("digits_ip", "192.168.0.1:8080"),
        ("digits_spaced_runs", "1 22 333 4444 55555"),
        ("digits_unicode_numeric", "x² + y³ = ½ and ①②③ and Ⅻ"),
        ("digits_arabic_indic", "٠١٢٣٤٥٦٧٨٩ and ०१२३"),
        ("digits_fullwidth", "１２３４５"),
    ]
    for n, s in mixed_digits:
        add(n, s)

    ws = [
        ("ws_spaces_2", "a  b"),
        ("ws_spaces_3", "a   b"),
        ("ws_spaces_8", "a        b"),
        ("ws_spaces_16", "                "),
        ("ws_leading", "   leading spaces"),
        ("ws_trailing", "trailing spaces   "),
        ("ws_tab", "a\tb"),
        ("ws_tabs", "\t\t\tindented"),
        ("ws_mixed", " \t \t mixed \t "),
        ("ws_newlines_2", "a\n\nb"),
        ("ws_newlines_5", "a\n\n\n\n\nb"),
        ("ws_crlf", "line one\r\nline two\r\n"),
        ("ws_cr", "a\rb"),
        ("ws_only_newlines", "\n\n\n"),
        ("ws_newline_space", "a\n b\n  c\n   d"),
        ("ws_trailing_newline", "end\n"),
        ("ws_space_newline", "a \nb"),
        ("ws_vertical_tab_ff", "a\x0bb\x0cc"),
        ("ws_nbsp", "a\u00a0b\u2009c\u3000d"),
        ("ws_zero_width", "a\u200bb\u200cc\u200dd\ufeffe"),
        ("ws_indent_code", "def f():\n    return 1\n"),
        ("ws_spaces_before_newline", "x    \n    y"),
    ]
    for n, s in ws:
        add(n, s)

    code = [
        ("py_0", "def add(a, b):\n    return a + b\n"),
        ("py_1", "for i in range(10):\n    if i % 2 == 0:\n        print(f\"{i} is even\")\n"),
        ("py_2", "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\n"),
        ("py_3", "class Foo(Bar):\n    \"\"\"Docstring.\"\"\"\n    def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)\n"),
        ("py_4", "lambda x: x ** 2 if x >= 0 else -x  # comment"),
        ("cpp_0", "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  return v.size();\n}\n"),
        ("cpp_1", "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }"),
        ("cpp_2", "auto* p = &x; p->y = 0; x <<= 2; x >>= 1; a != b && c || !d;"),
        ("cpp_3", "static_assert(sizeof(BlockQ4) == 20, \"size\");"),
        ("json_0", "{\"name\": \"tern\", \"version\": 1, \"tags\": [\"a\", \"b\"], \"ok\": true, \"x\": null}"),
        ("json_1", "{\n  \"nested\": {\n    \"key\": [1, 2.5, -3e4]\n  }\n}"),
        ("shell_0", "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done\n"),
        ("shell_1", "ls -la | grep -v '^d' | awk '{print $9}' > out.txt 2>&1 &"),
        ("shell_2", "cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2"),
        ("html_0", "<div class=\"a\"><p>Hello &amp; welcome</p></div>"),
        ("sql_0", "SELECT id, name FROM users WHERE age > 21 ORDER BY name;"),
        ("rust_0", "fn main() { let v: Vec<u8> = vec![0; 16]; println!(\"{:?}\", v); }"),
        ("regex_0", r"^\s*(\d+)\s*([+\-*/])\s*(\d+)\s*$"),
        ("markdown_0", "# Title\n\n- item **bold** and _italic_\n- [link](http://x.y)\n\n```py\nx=1\n```"),
    ]
    for n, s in code:
        add(n, s)

    contractions = [
        ("contr_lower", "it's don't you're we've I'm you'll he'd"),
        ("contr_upper", "IT'S DON'T YOU'RE WE'VE I'M YOU'LL HE'D"),
        ("contr_mixed_case", "It'S Don'T You'Re We'Ve"),
        ("contr_s", "'s"),
        ("contr_t", "'t"),
        ("contr_re", "'re"),
        ("contr_ve", "'ve"),
        ("contr_m", "'m"),
        ("contr_ll", "'ll"),
        ("contr_d", "'d"),
        ("contr_S_upper", "'S"),
        ("contr_LL_upper", "'LL"),
        ("contr_spaced", "it ' s and don ' t"),
        ("contr_possessive", "the dog's bone and the dogs' bones"),
        ("contr_curly", "it’s don’t you’re"),
        ("contr_double", "y'all'd've"),
        ("contr_quotes", "'hello' 'world'"),
        ("contr_digit", "'90s and '5"),
    ]
    for n, s in contractions:
        add(n, s)

    punct = [
        ("punct_run_0", "!!!???..."),
        ("punct_run_1", "----------"),
        ("punct_run_2", "=========="),
        ("punct_run_3", "*****"),
        ("punct_run_4", "...!?!?...;;;:::"),
        ("punct_run_5", "#$%&()*+,-./:;<=>?@[\\]^_`{|}~"),
        ("punct_run_6", "“smart quotes” and ‘single’ — dashes – and … ellipsis"),
        ("punct_run_7", " ... leading space punct"),
        ("punct_run_8", "«guillemets» ¿¡ § ¶ † ‡ • ·"),
        ("punct_run_9", "->  =>  <=  >=  ==  !=  ::  ..."),
        ("punct_single_dot", "."),
        ("punct_single_comma", ","),
    ]
    for n, s in punct:
        add(n, s)

    long_words = [
        ("long_word_0", "Pneumonoultramicroscopicsilicovolcanoconiosis"),
        ("long_word_1", "antidisestablishmentarianism"),
        ("long_word_2", "Supercalifragilisticexpialidocious"),
        ("long_word_3", "a" * 100),
        ("long_word_4", "ab" * 60),
        ("long_word_5", "Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz"),
        ("long_word_6", "xyzzy" * 30),
        ("long_word_7", "ThisIsAVeryLongCamelCaseIdentifierThatKeepsGoingAndGoingForever"),
    ]
    for n, s in long_words:
        add(n, s)

    special = [
        ("special_im_start_alone", "<|im_start|>"),
        ("special_im_end_alone", "<|im_end|>"),
        ("special_eot_alone", "<|endoftext|>"),
        ("special_chat_turn", "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n"),
        ("special_mid_text", "Hello <|im_end|> world"),
        ("special_no_space", "abc<|endoftext|>def"),
        ("special_adjacent", "<|im_start|><|im_end|><|endoftext|>"),
        ("special_with_newlines", "text\n<|endoftext|>\nmore text"),
        ("special_partial", "<|im_start| and |im_end|> and <|endoftext"),
        ("special_other_added", "<repo_name>tern<file_sep>main.cc<filename>x<gh_stars>10"),
        ("special_jupyter", "<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>"),
        ("special_lookalike", "<|IM_START|> < |im_start| > <|im_start |>"),
    ]
    for n, s in special:
        add(n, s)

    misc = [
        ("combining_acute_alone", "\u0301"),
        ("combining_run", "\u0300\u0301\u0302\u0303"),
        ("combining_after_space", " \u0308"),
        ("combining_zalgo", "Z\u0351\u036b\u0343a\u0352l\u0357g\u0334o\u0315"),
        ("ar_0", "مرحبا بالعالم"),
        ("ar_1", "اللغة العربية جميلة."),
        ("he_0", "שלום עולם"),
        ("he_1", "עברית עם ניקוד: שָׁלוֹם"),
        ("hi_0", "नमस्ते दुनिया"),
        ("hi_1", "हिन्दी भाषा बहुत सुंदर है।"),
        ("th_0", "สวัสดีชาวโลก"),
        ("th_1", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"),
        ("ru_0", "Привет, мир! Как дела?"),
        ("el_0", "Γειά σου Κόσμε! αβγδε"),
        ("bidi_mixed", "English then עברית then العربية then English"),
        ("math_0", "∀x ∈ ℝ: x² ≥ 0"),
        ("math_1", "∑_{i=1}^{n} i = n(n+1)/2"),
        ("math_2", "∫₀^∞ e^{-x²} dx = √π / 2"),
        ("math_3", "α + β ≠ γ; ∂f/∂x ≈ 0; A ⊆ B ∪ C ∩ D"),
        ("math_4", "≤ ≥ ≪ ≫ ± × ÷ ∞ ∅ ∇ ⊕ ⊗ ∧ ∨ ¬ → ⇒ ⇔"),
        ("math_5", "𝔸𝔹ℂ 𝐱𝐲𝐳 𝑓(𝑥)"),
        ("latex_0", "\\frac{a}{b} + \\sqrt{x^2 + y^2} = \\alpha_{i,j}"),
        ("box_drawing", "┌──┐\n│ab│\n└──┘"),
        ("arrows_symbols", "← ↑ → ↓ ★ ☆ ♠ ♥ ♦ ♣ ♪ ♫ ☀ ☁"),
        ("currency", "€100 £50 ¥1000 ₹500 ₿0.01 ¢5"),
        ("private_use", "\ue000\uf8ff"),
        ("replacement_char", "\ufffd"),
        ("control_chars", "a\x00b\x01c\x1fd\x7fe"),
        ("c1_controls", "x\x80y\x9fz"),
        ("max_codepoint", "\U0010ffff"),
        ("url_long", "https://www.example.com/a/very/long/path/to/some/resource.html?param1=value1&param2=value2"),
        ("hashtag_mention", "#MachineLearning @someone #AI4Good"),
        ("repeated_word", "the the the the the the the the"),
        ("repeated_newline_words", "yes\nyes\nyes\nno\n"),
    ]
    for n, s in misc:
        add(n, s)

    # Case and spacing variants of a few sentences: BPE merges differ with a leading space.
    base = ["hello world", "The Tokenizer", "machine learning", "Paris is in France"]
    for i, s in enumerate(base):
        add(f"variant_{i}_plain", s)
        add(f"variant_{i}_lead_space", " " + s)
        add(f"variant_{i}_upper", s.upper())
        add(f"variant_{i}_lower", s.lower())
        add(f"variant_{i}_title", s.title())
        add(f"variant_{i}_newline_lead", "\n" + s)

    # Single characters from many ranges (each stresses the byte-level alphabet).
    singles = ["é", "ß", "ñ", "ø", "中", "あ", "한", "ا", "א", "क", "ก", "Ω", "Ж", "€", "™", "🙂", "\u00ad", "\x7f", "~", "\\"]
    for i, s in enumerate(singles):
        add(f"single_char_{i:02d}", s)

    add("paragraph_2000", paragraph_2000())
    return c


def paragraph_2000():
    """A 2000-character English paragraph with numbers, punctuation and a few accents."""
    parts = [
        "In the spring of 1874, the small harbour town of Saint-Étienne-sur-Mer woke to find its lighthouse dark for the first time in forty-two years. ",
        "Nobody could say exactly when the lamp had failed; the keeper, a taciturn man named Édouard Vasseur, insisted he had trimmed the wick at 9:15 p.m. as always. ",
        "The fishermen, who relied on the beam to guide them past the rocks at the mouth of the bay, were furious, and by noon a crowd of about 300 people had gathered on the quay. ",
        "\"It's sabotage,\" said one. \"It's old age,\" said another, glancing meaningfully at Vasseur. ",
        "The mayor, eager to avoid a scandal, sent for an engineer from the capital, who arrived three days later with two trunks of instruments and a very poor opinion of provincial life. ",
        "What he found surprised everyone: the lens, a magnificent first-order Fresnel assembly weighing nearly 6,000 kilograms, had been rotated by precisely 180 degrees. ",
        "Such a thing could not happen by accident, and it could not be done by one man alone. ",
        "Over the following weeks the engineer interviewed sailors, shopkeepers, the priest, the schoolteacher and even the children, filling notebook after notebook with careful observations. ",
        "He learned that the town owed money to a shipping company in Marseille; that the company wished to build a new port ten kilometres north; ",
        "and that a dark lighthouse, followed by a wreck or two, would make the old harbour look dangerous and obsolete. ",
        "When he finally presented his report to the council, the room fell silent. Nobody was arrested, but the lens was turned back, ",
        "the lamp was lit again on the 1st of May, and the company quietly withdrew its offer. ",
        "Vasseur kept the light for another eleven years, and every evening, as the beam swept across the water, he would raise his cap to the engineer's empty chair at the café. ",
        "Years later, historians would argue about the details, but the townspeople never doubted the lesson: a light that everyone depends on needs more than one keeper.",
    ]
    text = "".join(parts)
    while len(text) < 2000:
        text += " The sea remembered nothing, and the town remembered everything."
    return text[:2000]


def digit_split_tokenizer(hf_tok):
    """The same BPE with SmolLM2's original pre-tokenizer (digits split first).

    transformers' GGUF converter builds a plain ByteLevel pre-tokenizer; the
    model's own tokenizer.json (and llama.cpp's "smollm" pre-tokenizer) split
    every \\p{N} character first. For ASCII digits the result is identical
    (the vocabulary has no multi-digit tokens), but other numerics (², ½, ①, ٣)
    can differ. We record the alternative ids so a test can tell which
    convention a case exercises.
    """
    t = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    return t


def hex_or_dash(b):
    return b.hex() if b else "-"


def ids_or_dash(ids):
    return " ".join(str(i) for i in ids) if ids else "-"


def write_tokenizer_cases(tok, path):
    cases = tokenizer_cases()
    names = [n for n, _ in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    alt = digit_split_tokenizer(tok)
    n_roundtrip_bad = 0
    n_alt_diff = 0
    lines = []
    for name, text in cases:
        ids = tok.encode(text, add_special_tokens=False)
        decoded = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        roundtrip = 1 if decoded == text else 0
        alt_ids = alt.encode(text, add_special_tokens=False).ids
        alt_field = "=" if alt_ids == ids else ids_or_dash(alt_ids)
        n_roundtrip_bad += 1 - roundtrip
        n_alt_diff += alt_field != "="
        if not roundtrip:
            print(f"  roundtrip differs: {name}: {text!r} -> {decoded!r}")
        if alt_field != "=":
            print(f"  digit-split differs: {name}: {ids} vs {alt_ids}")
        lines.append(f"{name}\t{hex_or_dash(text.encode('utf-8'))}\t{len(ids)}\t{ids_or_dash(ids)}\t{roundtrip}\t{alt_field}\n")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("# tern tokenizer goldens: made by tests/goldens/make_goldens.py from the GGUF tokenizer\n")
        f.write(f"# transformers {transformers.__version__}; encode(text, add_special_tokens=False)\n")
        f.write("# fields (tab-separated): name, text_utf8_hex ('-' if empty), n_ids, ids (space-separated, '-' if none),"
                " hf_roundtrip (1 if decode(ids)==text), digit_split_ids ('=' if identical)\n")
        f.writelines(lines)
    return len(cases), n_roundtrip_bad, n_alt_diff


# --------------------------------------------------------------------------
# Model goldens
# --------------------------------------------------------------------------

ESSAY = (
    "The history of computing is often told as a story of machines getting faster, but it is just as much a story "
    "of machines getting smaller. The first electronic computers filled entire rooms, consumed as much power as a "
    "small village, and required teams of engineers to keep them running. Each vacuum tube was a fragile glass bulb "
    "that could burn out at any moment, and a single failure could halt a calculation that had been running for "
    "hours. When the transistor arrived in the late 1940s, it promised a different future: switches that were tiny, "
    "reliable, and cheap enough to use by the thousands. Within two decades, engineers had learned to etch many "
    "transistors onto a single piece of silicon, and the integrated circuit was born.\n\n"
    "What followed was one of the most remarkable trends in the history of technology. Roughly every two years, the "
    "number of transistors that could fit on a chip doubled, while the cost of each transistor fell. This steady "
    "progress made it possible to put a computer on a desk, then in a backpack, then in a pocket. Today, a cheap "
    "microcontroller that costs less than a cup of coffee has more computing power than the machines that guided "
    "astronauts to the Moon. These small processors are everywhere: in washing machines and thermostats, in cars and "
    "toys, in hearing aids and factory sensors.\n\n"
    "Yet small devices face constraints that large computers do not. They have little memory, often measured in "
    "kilobytes or a few megabytes rather than gigabytes. They run on batteries or harvested energy, so every "
    "operation has a cost. They cannot rely on a network connection, because the network may be slow, expensive, or "
    "simply absent. Designing software for such machines is an exercise in discipline. Programmers must think "
    "carefully about where every byte lives, avoid unnecessary copies, and choose algorithms whose running time is "
    "predictable rather than merely fast on average.\n\n"
    "In recent years, a new challenge has appeared: running language models on these devices. A language model is a "
    "large table of numbers, called weights, together with a recipe for combining them with the words of a prompt to "
    "predict the next word. Even a small model may have over a hundred million weights. To make such a model fit, "
    "engineers compress the weights, storing each one in four or eight bits instead of thirty-two. They also "
    "rearrange the computation so that the processor's vector units are kept busy and the memory is read only once. "
    "The result is surprising: a model that once needed a data center can now answer simple questions on a device "
    "that fits in the palm of your hand. The question that remains is"
)

CODE = '''import heapq
from collections import defaultdict


class Graph:
    """A small weighted directed graph stored as adjacency lists."""

    def __init__(self):
        self.edges = defaultdict(list)

    def add_edge(self, src, dst, weight):
        if weight < 0:
            raise ValueError("negative weights are not supported")
        self.edges[src].append((dst, weight))

    def neighbors(self, node):
        return self.edges.get(node, [])


def dijkstra(graph, start):
    """Returns the shortest distance from start to every reachable node."""
    dist = {start: 0}
    queue = [(0, start)]
    visited = set()
    while queue:
        d, node = heapq.heappop(queue)
        if node in visited:
            continue
        visited.add(node)
        for nxt, w in graph.neighbors(node):
            nd = d + w
            if nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                heapq.heappush(queue, (nd, nxt))
    return dist


def shortest_path(graph, start, goal):
    """Returns the list of nodes on a shortest path from start to goal, or None."""
    prev = {}
    dist = {start: 0}
    queue = [(0, start)]
    while queue:
        d, node = heapq.heappop(queue)
        if node == goal:
            path = [node]
            while node in prev:
                node = prev[node]
                path.append(node)
            return path[::-1]
        if d > dist.get(node, float("inf")):
            continue
        for nxt, w in graph.neighbors(node):
            nd = d + w
            if nd < dist.get(nxt, float("inf")):
                dist[nxt] = nd
                prev[nxt] = node
                heapq.heappush(queue, (nd, nxt))
    return None


def test_dijkstra():
    g = Graph()
    g.add_edge("a", "b", 1)
    g.add_edge("b", "c", 2)
    g.add_edge("a", "c", 5)
    g.add_edge("c", "d", 1)
    dist = dijkstra(g, "a")
    assert dist == {"a": 0, "b": 1, "c": 3, "d": 4}
    assert shortest_path(g, "a", "d") == ["a", "b", "c", "d"]


def test_unreachable():
    g = Graph()
    g.add_edge("x", "y", 3)
'''

STORY = (
    "Mira lived at the edge of a village where the forest began. Every morning she walked to the old stone bridge to "
    "watch the river, because her grandmother had told her that the river remembered everything that had ever "
    "fallen into it. One autumn day, Mira found a small brass key lying on the bridge, half hidden under a pile of "
    "red leaves. It was warm, as if someone had just been holding it. She looked around, but the path was empty and "
    "the only sound was the water rushing below.\n\n"
    "She carried the key home and showed it to her grandmother, who turned it over in her wrinkled hands for a long "
    "time. \"This belongs to the clockmaker,\" she said at last. \"He lived in the tower on the hill, long before you "
    "were born. When he left, he locked the tower and threw the key into the river, so that nobody could ever wind "
    "the great clock again.\" Mira asked why anyone would want a clock to stop. Her grandmother only smiled and said "
    "that some questions are better answered by walking than by talking.\n\n"
    "The next day Mira climbed the hill. The tower was covered in ivy, and its clock face was cracked and grey. The "
    "key fit the door perfectly. Inside, dust floated in the light from a high window, and hundreds of gears of every "
    "size hung silent on the walls. In the middle of the room stood a workbench with a letter on it, addressed to "
    "\"whoever finds the key.\" The letter explained that the clock did not measure hours, but kindness: each time "
    "someone in the village helped another person, the clock would move forward by one second. When people stopped "
    "helping one another, the clock stopped too, and the clockmaker, heartbroken, went away.\n\n"
    "Mira put the letter in her pocket and went back down to the village. She helped the baker carry flour, she "
    "fixed the fence for the old shepherd, and she read stories to the children whose parents worked late in the "
    "fields. At first nothing happened. But one evening, as the sun was setting, a deep sound rolled down from the "
    "hill, and everyone in the village stopped to listen. The great clock had struck once. From that day on, the "
    "villagers made a habit of helping each other, and the clock in the tower never stopped again."
)


def prompts(tok):
    """Returns [(name, kind, ids)]: the exact ids fed to the model (no BOS: add_bos_token=False)."""
    def plain(text):
        return tok.encode(text, add_special_tokens=False)

    def chat(user):
        ids = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True,
                                      tokenize=True, return_dict=False)
        return list(ids)

    return [
        ("plain_capital", "plain", plain("The capital of France is")),
        ("chat_capital", "chat", chat("What is the capital of France?")),
        ("plain_counting", "plain", plain("Monday, Tuesday, Wednesday,")),
        ("chat_explain_sky", "chat", chat("Explain in a few sentences why the sky is blue.")),
        ("chat_recipe", "chat", chat("Give me a simple recipe for pancakes.")),
        ("plain_essay_long", "plain", plain(ESSAY)),
        ("plain_code_long", "plain", plain(CODE)),
        ("chat_story_long", "chat", chat(STORY + "\n\nWhat is the moral of this story? Answer in two sentences.")),
    ]


def log_probs(logits):
    """float32 logits [n, vocab] -> float64 log-probabilities [n, vocab]."""
    return torch.log_softmax(logits.double(), dim=-1)


def top2_gap(lp_row):
    v, i = torch.topk(lp_row, 2)
    return int(i[0]), float(v[0] - v[1])


@torch.no_grad()
def greedy(model, ids, n_new, eos_id):
    """Greedy decode with the KV cache; stops after emitting eos. Returns (gen_ids, gaps, logps)."""
    out = model(torch.tensor([ids]), use_cache=True)
    past = out.past_key_values
    logits = out.logits[0, -1]
    gen, gaps, logps = [], [], []
    for _ in range(n_new):
        lp = log_probs(logits[None])[0]
        tok_id, gap = top2_gap(lp)
        gen.append(tok_id)
        gaps.append(gap)
        logps.append(float(lp[tok_id]))
        if tok_id == eos_id:
            break
        out = model(torch.tensor([[tok_id]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1]
    return gen, gaps, logps


@torch.no_grad()
def teacher_forced(model, seq):
    """One full forward pass (no cache) over seq. Row i predicts seq[i+1], i in [0, len-2]."""
    logits = model(torch.tensor([seq]), use_cache=False).logits[0]  # [len, vocab] float32
    lp = log_probs(logits)                                           # [len, vocab] float64
    top_v, top_i = torch.topk(lp, TOP_K, dim=-1)                     # [len, TOP_K]
    rows = []
    for i in range(len(seq) - 1):
        nxt = seq[i + 1]
        rows.append((i, seq[i], nxt, int(top_i[i, 0]), float(lp[i, nxt]),
                     float(top_v[i, 0] - top_v[i, 1]), top_i[i].tolist(), top_v[i].tolist()))
    return rows


def check_weights(model, gguf_path):
    """Checks tied embeddings and that transformers' dequantization is exactly d*q(+m) in f32."""
    import gguf
    emb = model.model.embed_tokens.weight
    head = model.lm_head.weight
    assert model.config.tie_word_embeddings, "expected tie_word_embeddings"
    assert torch.equal(emb, head), "lm_head must equal token_embd (GGUF has no output.weight)"
    reader = gguf.GGUFReader(gguf_path)
    tensors = {t.name: t for t in reader.tensors}
    assert "output.weight" not in tensors, "GGUF unexpectedly has output.weight"

    def block_dequant(t):
        raw = np.asarray(t.data).reshape(-1).view(np.uint8)
        if t.tensor_type == gguf.GGMLQuantizationType.Q8_0:
            b = raw.reshape(-1, 34)
            d = b[:, :2].copy().view(np.float16).astype(np.float32)
            q = b[:, 2:].copy().view(np.int8).astype(np.float32)
            return q * d
        if t.tensor_type == gguf.GGMLQuantizationType.Q4_1:
            b = raw.reshape(-1, 20)
            d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
            m = b[:, 2:4].copy().view(np.float16).astype(np.float32)
            qs = b[:, 4:]
            q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)  # low nibbles = 0..15
            return q * d + m
        raise ValueError(t.tensor_type)

    checks = [
        ("token_embd.weight", emb),
        ("blk.0.ffn_down.weight", model.model.layers[0].mlp.down_proj.weight),
        ("blk.29.attn_output.weight", model.model.layers[29].self_attn.o_proj.weight),
    ]
    for name, w in checks:
        t = tensors[name]
        ref = block_dequant(t).reshape(w.shape)
        diff = float(np.abs(ref - w.detach().numpy()).max())
        print(f"  {name}: {t.tensor_type.name} {tuple(w.shape)} max|transformers - manual dequant| = {diff}")
        assert diff == 0.0, name


def fmt_floats(xs):
    return " ".join(f"{x:.6f}" for x in xs)


def main():
    t_start = time.time()
    gguf_path = os.path.join(MODEL_DIR, GGUF_NAME)
    if not os.path.exists(gguf_path):
        sys.exit(f"missing {gguf_path}")
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}")

    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=GGUF_NAME)
    print("special/added tokens:")
    for i, t in sorted(tok.added_tokens_decoder.items()):
        print(f"  {i}\t{t.content}\tspecial={t.special}")
    print(f"bos={tok.bos_token!r}({tok.bos_token_id}) eos={tok.eos_token!r}({tok.eos_token_id}) "
          f"add_bos_token={getattr(tok, 'add_bos_token', None)}")

    tk_path = os.path.join(OUT_DIR, "tokenizer_cases.tsv")
    n_cases, n_rt_bad, n_alt = write_tokenizer_cases(tok, tk_path)
    print(f"tokenizer: {n_cases} cases, {n_rt_bad} not round-tripping, {n_alt} differ under digit-split")

    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.eval()
    check_weights(model, gguf_path)
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")

    greedy_lines, tf_lines, txt = [], [], []
    n_tf = 0
    n_mismatch = 0
    for name, kind, ids in prompts(tok):
        gen, gaps, logps = greedy(model, ids, N_GEN, eos_id)
        seq = ids + gen
        rows = teacher_forced(model, seq)
        # The no-cache pass must pick the same tokens over the continuation, except at near-ties.
        for (i, _, nxt, top1, _, gap, _, _) in rows[len(ids) - 1:]:
            if top1 != nxt:
                n_mismatch += 1
                print(f"  {name}: cached vs uncached argmax differ at pos {i} (gap {gap:.6f})")
        prompt_text = tok.decode(ids, skip_special_tokens=False)
        cont = tok.decode(gen, skip_special_tokens=False)
        greedy_lines.append("\t".join([
            name, kind, hex_or_dash(prompt_text.encode("utf-8")),
            str(len(ids)), ids_or_dash(ids),
            str(len(gen)), ids_or_dash(gen), fmt_floats(gaps), fmt_floats(logps),
        ]) + "\n")
        for (i, cur, nxt, top1, lpn, gap, ti, tv) in rows:
            tf_lines.append(f"{name}\t{i}\t{cur}\t{nxt}\t{top1}\t{lpn:.6f}\t{gap:.6f}\t"
                            f"{','.join(str(x) for x in ti)}\t{','.join(f'{x:.6f}' for x in tv)}\n")
        n_tf += len(rows)
        min_gap = min(gaps)
        txt.append(f"=== {name} ({kind}): {len(ids)} prompt ids, {len(gen)} generated, "
                   f"min greedy gap {min_gap:.4f} ===\n--- prompt ---\n{prompt_text}\n--- continuation ---\n{cont}\n\n")
        print(f"{name}: prompt {len(ids)} ids, gen {len(gen)}, min gap {min_gap:.4f}\n  -> {cont!r}")

    with open(os.path.join(OUT_DIR, "model_greedy.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write("# tern model goldens: greedy decoding by transformers (float32) on the dequantized GGUF\n")
        f.write(f"# transformers {transformers.__version__}, torch {torch.__version__}; stop after <|im_end|> (2) or {N_GEN} tokens\n")
        f.write("# fields (tab-separated): name, kind, prompt_text_utf8_hex, n_prompt, prompt_ids,"
                " n_gen, gen_ids, gen_gaps (logp top1 - logp top2 per step), gen_logps (logp of chosen token)\n")
        f.writelines(greedy_lines)
    with open(os.path.join(OUT_DIR, "model_teacher_forced.tsv"), "w", encoding="ascii", newline="\n") as f:
        f.write("# tern model goldens: teacher-forced log-probs over prompt_ids + gen_ids of model_greedy.tsv\n")
        f.write("# one full forward pass (no cache), float32 logits, log_softmax in float64\n")
        f.write(f"# fields (tab-separated): name, pos, token, next_token, top1, logp_next, gap (logp top1 - logp top2),"
                f" top{TOP_K}_ids (comma-separated), top{TOP_K}_logps (comma-separated)\n")
        f.writelines(tf_lines)
    with open(os.path.join(OUT_DIR, "model_continuations.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("Greedy continuations from transformers on the dequantized GGUF (for humans; see model_greedy.tsv).\n\n")
        f.writelines(txt)
    print(f"teacher-forced positions: {n_tf}; cached/uncached argmax mismatches: {n_mismatch}")
    print(f"done in {time.time() - t_start:.1f} s")


if __name__ == "__main__":
    main()
