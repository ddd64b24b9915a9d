// Random operations (from a fixed seed) against the reference model: every
// write is mirrored in a std::map and every read is checked against it. Keys
// come from a small alphabet of awkward bytes, so operations collide often.
#include <random>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Randomized = Contract<Factory>;
TYPED_TEST_SUITE(Randomized, Factories, FactoryName);

class Random {
 public:
  explicit Random(uint32_t seed) : engine_(seed) {}

  // Uniform enough, and unlike std::uniform_int_distribution the same on
  // every standard library, so a failing seed replays anywhere.
  size_t below(size_t n) { return engine_() % n; }
  bool chance(size_t percent) { return below(100) < percent; }

  std::string key() {
    static const char alphabet[] = {'\0', '\x01', '!', 'a', 'b', '\x7f', '\x80', '\xff'};
    std::string key(below(4), '\0');
    for (auto& c : key) c = alphabet[below(sizeof alphabet)];
    return key;
  }

  std::string value() {
    std::string value(chance(3) ? 1000 + below(3000) : below(9), '\0');
    for (auto& c : value) c = static_cast<char>(below(256));
    return value;
  }

  std::optional<std::string> maybe_key() { return chance(50) ? std::optional<std::string>(key()) : std::nullopt; }

  IteratorOptions range() {
    IteratorOptions range;
    range.gt = chance(30) ? maybe_key() : std::nullopt;
    range.gte = chance(30) ? maybe_key() : std::nullopt;
    range.lt = chance(30) ? maybe_key() : std::nullopt;
    range.lte = chance(30) ? maybe_key() : std::nullopt;
    range.limit = chance(60) ? -1 : static_cast<int64_t>(below(6));
    range.reverse = chance(50);
    return range;
  }

 private:
  std::mt19937 engine_;
};

// One random operation on `db`, mirrored in (or checked against) `model`.
// Returns a description for failure messages.
std::string step(Database& db, Model& model, Random& random) {
  switch (random.below(10)) {
    case 0:
    case 1: {
      auto key = random.key();
      auto value = random.value();
      db.put(key, value);
      model[key] = value;
      return "put";
    }
    case 2: {
      auto key = random.chance(70) && !model.empty() ? std::next(model.begin(), random.below(model.size()))->first
                                                     : random.key();
      db.del(key);
      model.erase(key);
      return "del";
    }
    case 3: {
      std::vector<BatchOperation> operations;
      for (size_t i = random.below(6); i > 0; --i) {
        auto key = random.key();
        if (random.chance(30)) {
          operations.push_back(BatchOperation::del(key));
          model.erase(key);
        } else {
          operations.push_back(BatchOperation::put(key, random.value()));
          model[key] = operations.back().value;
        }
      }
      db.batch(operations);
      return "batch";
    }
    case 4: {
      auto batch = db.batch();
      Model pending = model;
      for (size_t i = random.below(6); i > 0; --i) {
        auto key = random.key();
        if (random.chance(10)) {
          batch.clear();
          pending = model;
        } else if (random.chance(30)) {
          batch.del(key);
          pending.erase(key);
        } else {
          auto value = random.value();
          batch.put(key, value);
          pending[key] = value;
        }
      }
      batch.write();
      model = std::move(pending);
      return "chained batch";
    }
    case 5: {
      if (!random.chance(25)) return "no clear";
      ClearOptions options;
      static_cast<RangeOptions&>(options) = random.range();
      db.clear(options);
      model = cleared(model, options);
      return "clear" + describe(options);
    }
    case 6: {
      auto key = random.chance(50) && !model.empty() ? std::next(model.begin(), random.below(model.size()))->first
                                                     : random.key();
      auto it = model.find(key);
      auto expected = it == model.end() ? std::nullopt : std::optional<std::string>(it->second);
      EXPECT_EQ(db.try_get(key), expected);
      EXPECT_EQ(db.has(key), expected.has_value());
      return "get";
    }
    case 7: {
      std::vector<std::string> keys;
      std::vector<std::optional<std::string>> values;
      std::vector<bool> found;
      for (size_t i = random.below(5); i > 0; --i) {
        keys.push_back(random.key());
        auto it = model.find(keys.back());
        values.push_back(it == model.end() ? std::nullopt : std::optional<std::string>(it->second));
        found.push_back(it != model.end());
      }
      EXPECT_EQ(db.get_many(keys), values);
      EXPECT_EQ(db.has_many(keys), found);
      return "get_many";
    }
    default: {
      auto range = random.range();
      auto iterator = db.iterator(range);
      size_t consumed = random.below(4);
      std::vector<Entry> got;
      for (size_t i = 0; i < consumed; ++i) {
        if (auto entry = iterator->next()) got.push_back(std::move(*entry));
      }
      auto expected = expected_entries(model, range);
      EXPECT_EQ(got, std::vector<Entry>(expected.begin(), expected.begin() + std::min(consumed, expected.size())));
      std::string what = "iterate" + describe(range);
      if (random.chance(50)) {
        auto target = random.key();
        iterator->seek(target);
        expected = expected_after_seek(model, range, target, got.size());
        what += " seek " + ::testing::PrintToString(target);
      } else {
        expected.erase(expected.begin(), expected.begin() + std::min(consumed, expected.size()));
      }
      EXPECT_EQ(drain_by_nextv(*iterator, 1 + random.below(4)), expected);
      return what;
    }
  }
}

TYPED_TEST(Randomized, RandomOperations) {
  Database& db = this->db();
  Model model;
  Random random(20240611);
  for (int i = 0; i < 1500; ++i) {
    std::string what = step(db, model, random);
    if (::testing::Test::HasFailure()) FAIL() << "diverged from the model at step " << i << ": " << what;
  }
  EXPECT_EQ(contents(db), entries_of(model));
}

// Random operations across sessions: closing and reopening (and, with
// permanence, reopening the storage as a new object) loses nothing.
TYPED_TEST(Randomized, RandomOperationsAcrossReopens) {
  Database* db = &this->db();
  const bool permanent = db->supports().permanence;
  Model model;
  Random random(7);
  for (int session = 0; session < 4; ++session) {
    for (int i = 0; i < 150; ++i) {
      std::string what = step(*db, model, random);
      if (::testing::Test::HasFailure()) FAIL() << "session " << session << " step " << i << ": " << what;
    }
    if (permanent && (session % 2 == 1 || !TypeParam::reopens_after_close)) {
      db = &this->reopen();
    } else if (TypeParam::reopens_after_close) {
      db->close();
      db->open();
    }
    ASSERT_EQ(contents(*db), entries_of(model)) << "after reopening, session " << session;
  }
}

}  // namespace
}  // namespace contract
