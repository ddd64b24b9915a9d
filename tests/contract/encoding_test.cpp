// Encodings: utf8 by default, hex, base64, json and user codecs, per
// operation and as the database's default, and the errors they report
// (abstract-level's encoding, encoding-json, encoding-custom and
// encoding-decode-error tests).
#include <algorithm>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Encodings = Contract<Factory>;
TYPED_TEST_SUITE(Encodings, Factories, FactoryName);

const WriteOptions hex_write{"hex", "hex"};
const ReadOptions hex_read{"hex", "hex"};

// A user codec: text is stored reversed, and decoding rejects stored bytes
// starting with '!' so that its failure can be observed.
class ReversingEncoding final : public Encoding {
 public:
  std::string name() const override { return "contract-reversed"; }
  std::string encode(std::string_view text) const override {
    if (text == "unencodable") throw std::runtime_error("cannot encode that");
    return std::string(text.rbegin(), text.rend());
  }
  std::string decode(std::string_view bytes) const override {
    if (!bytes.empty() && bytes.front() == '!') throw std::runtime_error("cannot decode that");
    return std::string(bytes.rbegin(), bytes.rend());
  }
};

void register_reversing() { register_encoding(std::make_shared<ReversingEncoding>()); }

TYPED_TEST(Encodings, DefaultToUtf8) {
  Database& db = this->db();
  EXPECT_EQ(db.default_key_encoding(), "utf8");
  EXPECT_EQ(db.default_value_encoding(), "utf8");
  db.put("caf\xc3\xa9", "\xe2\x82\xac");
  EXPECT_EQ(db.get("caf\xc3\xa9", ReadOptions{"buffer", "buffer"}), "\xe2\x82\xac");
  EXPECT_EQ(db.get("caf\xc3\xa9", ReadOptions{"utf8", "utf8"}), "\xe2\x82\xac");
}

TYPED_TEST(Encodings, Hex) {
  Database& db = this->db();
  db.put("6869", "00ff", hex_write);
  EXPECT_EQ(db.get("hi"), std::string("\0\xff", 2));
  EXPECT_EQ(db.get("6869", hex_read), "00ff");
  EXPECT_EQ(db.get("6869", ReadOptions{"hex", "utf8"}), std::string("\0\xff", 2));
  db.put("4142", "ABab", hex_write);  // upper-case digits are accepted
  EXPECT_EQ(db.get("AB", ReadOptions{"utf8", "hex"}), "abab");  // and decoded lower-case
  EXPECT_EQ(db.get_many({"6869", "4142", "00"}, hex_read),
            (std::vector<std::optional<std::string>>{"00ff", "abab", std::nullopt}));
  EXPECT_EQ(db.has_many({"6869", "ff"}, hex_read), (std::vector<bool>{true, false}));
  IteratorOptions options;
  options.key_encoding = "hex";
  options.value_encoding = "hex";
  EXPECT_EQ(db.iterator(options)->all(), (std::vector<Entry>{{"4142", "abab"}, {"6869", "00ff"}}));
  db.del("6869", hex_write);
  EXPECT_FALSE(db.has("hi"));
}

TYPED_TEST(Encodings, BadHexKeyOrValueIsInvalid) {
  Database& db = this->db();
  db.put("k", "v");
  for (const char* bad : {"zz", "abc", "0g", " 00"}) {
    SCOPED_TRACE(bad);
    EXPECT_LEVEL_ERROR(db.put(bad, "00", hex_write), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.put("00", bad, hex_write), codes::invalid_value);
    EXPECT_LEVEL_ERROR(db.get(bad, hex_read), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.try_get(bad, hex_read), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.has(bad, hex_read), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.get_many({"00", bad}, hex_read), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.has_many({bad}, hex_read), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.del(bad, hex_write), codes::invalid_key);
    IteratorOptions range;
    range.key_encoding = "hex";
    range.lt = bad;
    EXPECT_LEVEL_ERROR(db.iterator(range), codes::invalid_key);
    EXPECT_LEVEL_ERROR(db.keys(range), codes::invalid_key);
  }
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"k", "v"}}));
  EXPECT_EQ(db.open_iterator_count(), 0u);
}

TYPED_TEST(Encodings, Base64) {
  Database& db = this->db();
  const WriteOptions b64{"base64", "base64"};
  db.put("aGk=", "AP8=", b64);
  EXPECT_EQ(db.get("hi"), std::string("\0\xff", 2));
  EXPECT_EQ(db.get("aGk=", ReadOptions{"base64", "base64"}), "AP8=");
  db.put("YQ", "", b64);  // missing padding is accepted, as Node does
  EXPECT_EQ(db.get("a"), "");
  EXPECT_EQ(db.get("a", ReadOptions{"", "base64"}), "");
  IteratorOptions options;
  options.key_encoding = "base64";
  EXPECT_EQ(db.keys(options).all(), (std::vector<std::string>{"YQ==", "aGk="}));
  EXPECT_LEVEL_ERROR(db.put("a*b", "", b64), codes::invalid_key);
}

// abstract-level's "can decode from string to json" and back. What is
// stored is what JSON.stringify writes: compact, keys in their given order,
// integral numbers without a fraction; decoding returns the stored text.
TYPED_TEST(Encodings, JsonPerOperation) {
  Database& db = this->db();
  db.put("doc", "{\"thisis\": \"json\"}", WriteOptions{"", "utf8"});
  EXPECT_EQ(db.get("doc", ReadOptions{"", "json"}), "{\"thisis\": \"json\"}");
  db.put("doc2", "{ \"z\" : [1, 2.5, {\"b\": null}], \"a\": 1.0 }", WriteOptions{"", "json"});
  EXPECT_EQ(db.get("doc2"), "{\"z\":[1,2.5,{\"b\":null}],\"a\":1}");
  db.put("[1, \"x\"]", "true", WriteOptions{"json", "json"});
  EXPECT_EQ(db.get("[1,\"x\"]", ReadOptions{"utf8", "json"}), "true");
  EXPECT_EQ(db.get(" [ 1 , \"x\" ] ", ReadOptions{"json", "utf8"}), "true");
}

TYPED_TEST(Encodings, BadJsonIsInvalidAndBadStoredJsonFailsToDecode) {
  Database& db = this->db();
  const WriteOptions json{"json", "json"};
  EXPECT_LEVEL_ERROR(db.put("1", "{bad", json), codes::invalid_value);
  EXPECT_LEVEL_ERROR(db.put("not json", "1", json), codes::invalid_key);
  EXPECT_LEVEL_ERROR(db.batch({BatchOperation::put("1", "")}, json), codes::invalid_value);
  EXPECT_TRUE(contents(db).empty());

  db.put("key", "this {} is [] not : json");
  const ReadOptions as_json{"", "json"};
  EXPECT_LEVEL_ERROR(db.get("key", as_json), codes::decode_error);
  EXPECT_LEVEL_ERROR(db.get_many({"other", "key"}, as_json), codes::decode_error);
  IteratorOptions options;
  options.value_encoding = "json";
  auto iterator = db.iterator(options);
  EXPECT_LEVEL_ERROR(iterator->next(), codes::decode_error);
  // A missing value is not decoded at all.
  EXPECT_EQ(db.get_many({"other"}, as_json), std::vector<std::optional<std::string>>{std::nullopt});
}

// abstract-level's encoding-json test: a database whose default encodings are
// json, with simple and complex keys and values.
TYPED_TEST(Encodings, JsonDatabaseDefault) {
  Database& db = this->create(DatabaseOptions{"json", "json"});
  EXPECT_EQ(db.default_key_encoding(), "json");
  EXPECT_EQ(db.default_value_encoding(), "json");
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"0", "0"},
      {"1", "1"},
      {"\"a string\"", "\"a string\""},
      {"true", "true"},
      {"false", "false"},
      {"{\"foo\":\"bar\",\"bar\":[1,2,3],\"bang\":{\"yes\":true,\"no\":false}}", "\"complex key\""},
      {"\"complex value\"", "{\"foo\":\"bar\",\"bar\":[1,2,3],\"bang\":{\"yes\":true,\"no\":false}}"},
  };
  std::vector<BatchOperation> operations;
  for (const auto& [key, value] : entries) operations.push_back(BatchOperation::put(key, value));
  db.batch(operations);

  // As JSON.stringify writes it (no numbers here that it would rewrite).
  auto canonical = [](const std::string& text) { return nlohmann::ordered_json::parse(text).dump(); };
  std::vector<Entry> expected;
  for (const auto& [key, value] : entries) {
    EXPECT_EQ(db.get(key), canonical(value)) << key;
    expected.push_back({canonical(key), canonical(value)});
  }
  // Keys sort by their stored (JSON text) bytes.
  std::sort(expected.begin(), expected.end(), [](const Entry& a, const Entry& b) { return ByteOrder()(a.key, b.key); });
  EXPECT_EQ(db.iterator()->all(), expected);
  EXPECT_EQ(db.get("0", ReadOptions{"utf8", "utf8"}), "0");
  EXPECT_LEVEL_ERROR(db.put("bare words", "1"), codes::invalid_key);
}

TYPED_TEST(Encodings, HexDatabaseDefaultWithPerOperationOverride) {
  Database& db = this->create(DatabaseOptions{"hex", "utf8"});
  db.put("ff", "high");
  db.put("00", "low");
  db.put("text", "plain", WriteOptions{"utf8", ""});
  EXPECT_EQ(db.get("ff"), "high");
  EXPECT_EQ(db.get("text", ReadOptions{"utf8", ""}), "plain");
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"00", "74657874", "ff"}));
  IteratorOptions raw;
  raw.key_encoding = "utf8";
  raw.gt = std::string("\0", 1);
  EXPECT_EQ(db.keys(raw).all(), (std::vector<std::string>{"text", "\xff"}));
  ClearOptions range;
  range.gte = "80";
  db.clear(range);
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"00", "74657874"}));
}

TYPED_TEST(Encodings, UserCodecPerOperationAndAsDefault) {
  register_reversing();
  Database& db = this->db();
  const WriteOptions reversed{"contract-reversed", "contract-reversed"};
  db.put("abc", "xyz", reversed);
  EXPECT_EQ(db.get("cba"), "zyx");
  EXPECT_EQ(db.get("abc", ReadOptions{"contract-reversed", "contract-reversed"}), "xyz");

  Database& custom = this->create(DatabaseOptions{"contract-reversed", "contract-reversed"});
  custom.batch({BatchOperation::put("21", "one"), BatchOperation::put("12", "two"), BatchOperation::put("3", "three")});
  // Stored as "12", "21", "3": keys come back decoded, in stored order.
  EXPECT_EQ(custom.iterator()->all(), (std::vector<Entry>{{"21", "one"}, {"12", "two"}, {"3", "three"}}));
  EXPECT_EQ(custom.get("12"), "two");
  // Range bounds and seek targets go through the codec too.
  IteratorOptions range;
  range.gt = "12";  // stored "21"
  auto iterator = custom.keys(range);
  EXPECT_EQ(iterator.all(), std::vector<std::string>{"3"});
  auto seeking = custom.keys();
  seeking.seek("12");  // stored "21"
  EXPECT_EQ(seeking.all(), (std::vector<std::string>{"12", "3"}));
}

// abstract-level reports a codec's failures as LEVEL_INVALID_KEY / _VALUE on
// the way in and LEVEL_DECODE_ERROR on the way out, whatever it threw.
TYPED_TEST(Encodings, UserCodecFailuresGetLevelCodes) {
  register_reversing();
  Database& db = this->db();
  const WriteOptions reversed{"contract-reversed", "contract-reversed"};
  EXPECT_LEVEL_ERROR(db.put("unencodable", "v", reversed), codes::invalid_key);
  EXPECT_LEVEL_ERROR(db.put("k", "unencodable", reversed), codes::invalid_value);
  db.put("key", "!stored");  // stored bytes the codec refuses to decode
  db.put("!key", "value");
  const ReadOptions read{"", "contract-reversed"};
  EXPECT_LEVEL_ERROR(db.get("key", read), codes::decode_error);
  EXPECT_LEVEL_ERROR(db.get_many({"key"}, read), codes::decode_error);
  IteratorOptions values;
  values.value_encoding = "contract-reversed";
  values.lt = "key!";
  values.gte = "key";
  EXPECT_LEVEL_ERROR(db.iterator(values)->next(), codes::decode_error);
  IteratorOptions keys;
  keys.key_encoding = "contract-reversed";
  EXPECT_LEVEL_ERROR(db.keys(keys).next(), codes::decode_error);  // "!key" comes first
}

TYPED_TEST(Encodings, UnknownEncodingIsNotFound) {
  Database& db = this->db();
  EXPECT_LEVEL_ERROR(db.put("a", "b", WriteOptions{"no-such-encoding", ""}), codes::encoding_not_found);
  EXPECT_LEVEL_ERROR(db.get("a", ReadOptions{"", "no-such-encoding"}), codes::encoding_not_found);
  IteratorOptions options;
  options.value_encoding = "no-such-encoding";
  EXPECT_LEVEL_ERROR(db.iterator(options), codes::encoding_not_found);
  EXPECT_LEVEL_ERROR(this->create(DatabaseOptions{"no-such-encoding", "utf8"}), codes::encoding_not_found);
  EXPECT_TRUE(contents(db).empty());
}

TYPED_TEST(Encodings, KeysAndValuesIteratorsDecodeOnlyTheirHalf) {
  register_reversing();
  Database& db = this->db();
  db.put("!k", "!v");  // neither half decodes with the reversing codec
  IteratorOptions options;
  options.key_encoding = "contract-reversed";
  options.value_encoding = "contract-reversed";
  EXPECT_LEVEL_ERROR(db.keys(options).all(), codes::decode_error);
  options.key_encoding = "utf8";
  EXPECT_EQ(db.keys(options).all(), std::vector<std::string>{"!k"});
  options.value_encoding = "utf8";
  options.key_encoding = "contract-reversed";
  EXPECT_EQ(db.values(options).all(), std::vector<std::string>{"!v"});
}

}  // namespace
}  // namespace contract
