"""A few KB of mixed text (English, Chinese, code, emoji) to train the tiny test tokenizers on."""

CORPUS = """
The quick brown fox jumps over the lazy dog. It's a sunny day, isn't it? We'll see what they've done.
Large language models are trained on large amounts of text; they predict the next token.
GLM-4 and DeepSeek-R1 distills are served over the OpenAI API on one workstation with llama.cpp.
Numbers: 1, 22, 333, 4444, 55555, 3.14159, 2024-06-05, 100%, $42.00, version 0.3.36.
Hello world! Hello again, world. The world says hello back: "hello, hello, hello".
I can't believe it's already 5 o'clock. Don't worry, you're fine; I'm sure we'd make it.
今天天气很好，我们去公园散步吧。人工智能正在改变世界，大语言模型可以回答问题、写代码和翻译文本。
北京是中国的首都，上海是最大的城市。我喜欢学习新的知识，也喜欢和朋友一起讨论问题。
你好，世界！这是一个测试句子，用来训练分词器。请把这段中文和英文混合在一起处理。
模型转换需要正确的张量名称、旋转位置编码和特殊标记，否则输出的结果会出错。
def fibonacci(n: int) -> int:
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

for i in range(10):
    print(f"fib({i}) = {fibonacci(i)}")

class Tokenizer:
    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        return [self.vocab[t] for t in text.split()]

int main(void) { printf("%d\\n", 42); return 0; }
const add = (a, b) => a + b; // JavaScript arrow function
SELECT name, COUNT(*) FROM users WHERE age > 30 GROUP BY name ORDER BY 2 DESC;
Emoji time: 😀 😃 😄 😁 🚀 🦙 🦙 ✅ ❤️ 👍🏽 🎉🎉 🌟 — party! 🐍 Python is fun 🐍.
Mixed: 我爱Python和Rust 🦀, and I love 中文 too. 3个苹果 + 4个橙子 = 7个水果。
    Indented line with    several   spaces	and a tab.
New lines:

Double newline above.   Trailing spaces   
The end.
"""
