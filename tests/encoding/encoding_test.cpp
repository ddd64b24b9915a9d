// Unit tests of the encodings (src/many_level/encoding.hpp): each codec on its
// own, the registry, and that a database applies them. Expected texts are what
// Node's Buffer and JSON produce, since Node peers share the stored bytes.
//
// Naming, as in abstract-level: encode() takes the user's form (hex text,
// base64 text, JSON text) to stored bytes; decode() takes bytes back.

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "many_level.hpp"

namespace ml = many_level;

namespace {

std::string all_bytes() {
  std::string bytes(256, '\0');
  for (int i = 0; i < 256; ++i) bytes[i] = static_cast<char>(i);
  return bytes;
}

// The LEVEL_* code `action` fails with, or "" when it does not fail.
std::string error_code(const std::function<void()>& action) {
  try {
    action();
  } catch (const ml::Error& e) {
    return e.code();
  }
  return "";
}

std::shared_ptr<const ml::Encoding> codec(std::string_view name) { return ml::find_encoding(name); }

// ---- hex -----------------------------------------------------------------

TEST(HexEncoding, RoundTripsAllBytes) {
  auto hex = codec("hex");
  EXPECT_EQ(hex->name(), "hex");
  EXPECT_FALSE(hex->identity());
  std::string text = hex->decode(all_bytes());
  ASSERT_EQ(text.size(), 512u);
  EXPECT_EQ(text.substr(0, 8), "00010203");
  EXPECT_EQ(text.substr(504), "fcfdfeff");
  EXPECT_EQ(hex->encode(text), all_bytes());
}

TEST(HexEncoding, WritesLowerCaseAsNodeDoes) {
  // Buffer.from('hello').toString('hex')
  EXPECT_EQ(codec("hex")->decode("hello"), "68656c6c6f");
  EXPECT_EQ(codec("hex")->decode(std::string("\xab\xcd\xef", 3)), "abcdef");
  EXPECT_EQ(codec("hex")->decode(""), "");
}

TEST(HexEncoding, ReadsUpperAndMixedCase) {
  EXPECT_EQ(codec("hex")->encode("ABCDEF"), std::string("\xab\xcd\xef", 3));
  EXPECT_EQ(codec("hex")->encode("aBcDeF"), std::string("\xab\xcd\xef", 3));
  EXPECT_EQ(codec("hex")->encode(""), "");
}

TEST(HexEncoding, OddLengthIsAnEncodeError) {
  for (const char* text : {"a", "abc", "0102030"}) {
    EXPECT_EQ(error_code([&] { codec("hex")->encode(text); }), "LEVEL_ENCODE_ERROR") << text;
  }
}

TEST(HexEncoding, BadDigitIsAnEncodeError) {
  for (const char* text : {"zz", "0g", "g0", "12 4", "0x12", "--"}) {
    EXPECT_EQ(error_code([&] { codec("hex")->encode(text); }), "LEVEL_ENCODE_ERROR") << text;
  }
  EXPECT_EQ(error_code([&] { codec("hex")->encode(std::string("0\0", 2)); }), "LEVEL_ENCODE_ERROR");
}

// ---- base64 --------------------------------------------------------------

TEST(Base64Encoding, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  auto base64 = codec("base64");
  for (const auto& [bytes, text] : vectors) {
    EXPECT_EQ(base64->decode(bytes), text) << bytes;
    EXPECT_EQ(base64->encode(text), bytes) << text;
  }
}

TEST(Base64Encoding, AllBytesAsNodeWritesThem) {
  // Buffer.from([...Array(256).keys()]).toString('base64')
  const std::string expected =
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4"
      "OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx"
      "cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq"
      "q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj"
      "5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==";
  EXPECT_EQ(codec("base64")->decode(all_bytes()), expected);
  EXPECT_EQ(codec("base64")->encode(expected), all_bytes());
}

TEST(Base64Encoding, NodeCompatibleOutput) {
  auto base64 = codec("base64");
  EXPECT_EQ(base64->decode("hello"), "aGVsbG8=");  // Buffer.from('hello').toString('base64')
  EXPECT_EQ(base64->decode("\xfb\xff"), "+/8=");   // the standard alphabet, never - and _
  EXPECT_EQ(base64->decode("\xff\xfe\xfd"), "//79");
}

TEST(Base64Encoding, EveryLengthRoundTrips) {
  auto base64 = codec("base64");
  for (size_t length = 0; length <= 10; ++length) {
    std::string bytes;
    for (size_t i = 0; i < length; ++i) bytes.push_back(static_cast<char>(0xff - 37 * i));
    std::string text = base64->decode(bytes);
    EXPECT_EQ(text.size(), (length + 2) / 3 * 4) << length;
    EXPECT_EQ(base64->encode(text), bytes) << length;
    // Node reads base64 without its padding too.
    std::string unpadded = text.substr(0, text.find('='));
    EXPECT_EQ(base64->encode(unpadded), bytes) << length;
  }
}

TEST(Base64Encoding, ReadsTheUrlSafeAlphabet) {
  // Buffer.from('-_8', 'base64') is <Buffer fb ff>, as is '+/8='.
  EXPECT_EQ(codec("base64")->encode("-_8"), "\xfb\xff");
  EXPECT_EQ(codec("base64")->encode("-_8="), "\xfb\xff");
  EXPECT_EQ(codec("base64")->encode("__79"), "\xff\xfe\xfd");
}

TEST(Base64Encoding, BadTextIsAnEncodeError) {
  for (const char* text : {"Zm9v!", "Zm 9v", "Zm9v\n", "Z", "Zm9vY", "Zm==Zm", "Zg===", "\x80\x80"}) {
    EXPECT_EQ(error_code([&] { codec("base64")->encode(text); }), "LEVEL_ENCODE_ERROR") << text;
  }
}

// ---- json ----------------------------------------------------------------

TEST(JsonEncoding, StoresCompactJson) {
  auto json = codec("json");
  EXPECT_EQ(json->name(), "json");
  EXPECT_EQ(json->encode(R"( { "a" : 1 , "b" : [ 1 , 2 , { } ] , "c" : "x" } )"), R"({"a":1,"b":[1,2,{}],"c":"x"})");
  EXPECT_EQ(json->encode(" \"text\" "), "\"text\"");
  EXPECT_EQ(json->encode("null"), "null");
  EXPECT_EQ(json->encode("true"), "true");
  EXPECT_EQ(json->encode("-12"), "-12");
  EXPECT_EQ(json->encode("[]"), "[]");
  // Non-ASCII text stays UTF-8 and control characters are escaped, as JSON.stringify does.
  EXPECT_EQ(json->encode("\"caf\\u00e9\""), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json->encode("\"a\\u0001\\n\""), "\"a\\u0001\\n\"");
}

TEST(JsonEncoding, ReadsBackWhatItStored) {
  auto json = codec("json");
  std::string stored = json->encode(R"({"list":[true,false,null],"n":-1.5,"s":"\"quoted\""})");
  EXPECT_EQ(json->decode(stored), stored);
}

TEST(JsonEncoding, InvalidTextIsAnError) {
  auto json = codec("json");
  for (const char* text : {"", "{", "{'a':1}", "[1,]", "undefined", "1 2", "{\"a\":1}x"}) {
    EXPECT_EQ(error_code([&] { json->encode(text); }), "LEVEL_ENCODE_ERROR") << text;
    EXPECT_EQ(error_code([&] { json->decode(text); }), "LEVEL_DECODE_ERROR") << text;
  }
}

// JSON.stringify keeps the order of an object's keys and writes 1.0 as 1, so
// a Node peer stores {"b":1,"a":[1,100]} for the text below; so must we.
TEST(JsonEncoding, StoresTheBytesJsonStringifyWrites) {
  EXPECT_EQ(codec("json")->encode(R"({ "b" : 1, "a": [1.0, 1e2] })"), R"({"b":1,"a":[1,100]})");
}

// ---- identity encodings --------------------------------------------------

TEST(IdentityEncodings, Utf8BufferViewAndBinaryPassBytesThrough) {
  const std::string bytes = std::string("\0a\xff\x80 z", 6);
  for (const char* name : {"utf8", "buffer", "view", "binary"}) {
    auto identity = codec(name);
    EXPECT_EQ(identity->name(), name);
    EXPECT_TRUE(identity->identity()) << name;
    EXPECT_EQ(identity->encode(bytes), bytes) << name;
    EXPECT_EQ(identity->decode(bytes), bytes) << name;
    EXPECT_EQ(identity->encode(all_bytes()), all_bytes()) << name;
  }
}

// ---- the registry --------------------------------------------------------

TEST(EncodingRegistry, FindsEveryBuiltInEncoding) {
  for (const char* name : {"utf8", "buffer", "view", "binary", "hex", "base64", "json"}) {
    auto encoding = ml::find_encoding(name);
    ASSERT_NE(encoding, nullptr) << name;
    EXPECT_EQ(encoding->name(), name);
    EXPECT_EQ(ml::find_encoding(name), encoding) << "one shared instance";
  }
}

TEST(EncodingRegistry, UnknownNameIsEncodingNotFound) {
  for (const char* name : {"", "HEX", "utf-8", "no-such-encoding"}) {
    EXPECT_EQ(error_code([&] { ml::find_encoding(name); }), "LEVEL_ENCODING_NOT_FOUND") << name;
  }
  try {
    ml::find_encoding("no-such-encoding");
  } catch (const ml::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-encoding"), std::string::npos) << e.what();
  }
}

// A user codec: stores text reversed, and refuses text with a '#'.
class ReverseEncoding final : public ml::Encoding {
 public:
  explicit ReverseEncoding(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string encode(std::string_view text) const override {
    if (text.find('#') != std::string_view::npos) throw ml::Error(ml::codes::encode_error, "no # please");
    return std::string(text.rbegin(), text.rend());
  }
  std::string decode(std::string_view bytes) const override { return std::string(bytes.rbegin(), bytes.rend()); }

 private:
  std::string name_;
};

TEST(EncodingRegistry, RegistersAUserCodec) {
  EXPECT_EQ(error_code([] { ml::find_encoding("test-reverse"); }), "LEVEL_ENCODING_NOT_FOUND");
  ml::register_encoding(std::make_shared<ReverseEncoding>("test-reverse"));
  auto reverse = ml::find_encoding("test-reverse");
  EXPECT_EQ(reverse->name(), "test-reverse");
  EXPECT_FALSE(reverse->identity());
  EXPECT_EQ(reverse->encode("abc"), "cba");
}

TEST(EncodingRegistry, ReplacesACodecOfTheSameName) {
  ml::register_encoding(std::make_shared<ReverseEncoding>("test-replaced"));
  auto first = ml::find_encoding("test-replaced");
  ml::register_encoding(std::make_shared<ReverseEncoding>("test-replaced"));
  auto second = ml::find_encoding("test-replaced");
  EXPECT_NE(first, second);
  EXPECT_EQ(first->encode("ab"), "ba") << "a holder keeps the codec it found";
}

// ---- encodings applied by a database -------------------------------------

TEST(DatabaseEncodings, StoresTheBytesOfTheEncodedForm) {
  ml::MemoryDatabase db;
  db.put("68656c6c6f", "aGVsbG8=", {"hex", "base64"});
  EXPECT_EQ(db.get("hello"), "hello");
  EXPECT_EQ(db.get("hello", {"utf8", "hex"}), "68656c6c6f");
  EXPECT_EQ(db.get("68656C6C6F", {"hex", "base64"}), "aGVsbG8=");

  db.put("doc", R"( {"n": 1} )", {"utf8", "json"});
  EXPECT_EQ(db.get("doc"), R"({"n":1})");
}

TEST(DatabaseEncodings, UsesItsDefaultEncodings) {
  ml::MemoryDatabase db(ml::DatabaseOptions{"hex", "json"});
  EXPECT_EQ(db.default_key_encoding(), "hex");
  db.put("6b", "[1, 2]");
  EXPECT_EQ(db.get("6b"), "[1,2]");
  EXPECT_EQ(db.get("k", {"utf8", "utf8"}), "[1,2]");
  auto it = db.iterator();
  auto entry = it->next();
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->key, "6b");
  EXPECT_EQ(entry->value, "[1,2]");
}

TEST(DatabaseEncodings, UsesARegisteredUserCodec) {
  ml::register_encoding(std::make_shared<ReverseEncoding>("test-reverse-db"));
  ml::MemoryDatabase db;
  db.put("key", "value", {"test-reverse-db", "test-reverse-db"});
  EXPECT_EQ(db.get("yek"), "eulav");
  EXPECT_EQ(db.get("key", {"test-reverse-db", "test-reverse-db"}), "value");
}

TEST(DatabaseEncodings, ReportsEncodingFailuresUnderAbstractLevelsCodes) {
  ml::register_encoding(std::make_shared<ReverseEncoding>("test-reverse-errors"));
  ml::MemoryDatabase db;
  db.put("k", "not json");
  EXPECT_EQ(error_code([&] { db.put("zz", "v", {"hex", ""}); }), "LEVEL_INVALID_KEY");
  EXPECT_EQ(error_code([&] { db.put("k", "#", {"", "test-reverse-errors"}); }), "LEVEL_INVALID_VALUE");
  EXPECT_EQ(error_code([&] { db.put("k", "v", {"no-such-encoding", ""}); }), "LEVEL_ENCODING_NOT_FOUND");
  EXPECT_EQ(error_code([&] { db.get("k", {"", "json"}); }), "LEVEL_DECODE_ERROR");
  EXPECT_EQ(db.get("k"), "not json") << "a failed put leaves the value alone";
}

}  // namespace
