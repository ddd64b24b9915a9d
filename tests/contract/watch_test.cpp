// Watches (this project's change feed): every committed write arrives, in
// commit order, as the operations it did inside the watched range; a
// sublevel watches its own range with its prefix taken off; `since` resumes
// with nothing lost and nothing twice; a resume the history cannot serve is
// LEVEL_WATCH_TOO_OLD; encodings apply; closing stops deliveries; and the
// commits watched while several threads write replay to the database's
// final content. Deliveries may come on another thread (a guest's) and after
// the write returned, so tests wait for a last, known write to arrive.
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "contract.hpp"

// gtest prints an operation through this (found by ADL), bytes escaped.
MANY_LEVEL_NAMESPACE_BEGIN
inline void PrintTo(const BatchOperation& op, std::ostream* os) {
  if (op.type == BatchOperation::Type::put) {
    *os << "put(" << ::testing::PrintToString(op.key) << ", " << ::testing::PrintToString(op.value) << ')';
  } else {
    *os << "del(" << ::testing::PrintToString(op.key) << ')';
  }
}
MANY_LEVEL_NAMESPACE_END

namespace contract {
namespace {

template <typename Factory>
using Watches = Contract<Factory>;
TYPED_TEST_SUITE(Watches, Factories, FactoryName);

#define SKIP_WITHOUT_WATCH(db) \
  if (!(db).supports().watch) GTEST_SKIP() << "no change feed"

using Ops = std::vector<BatchOperation>;

constexpr auto kPatience = std::chrono::seconds(20);

// What one watch delivered. Thread-safe; also notes calls that overlapped.
class Watcher {
 public:
  WatchCallback callback() {
    return [this](std::optional<Error> error, const Commit& commit) {
      if (inside_.fetch_add(1) != 0) overlapped_ = true;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (error) {
          errors_.push_back(error->code());
        } else {
          commits_.push_back(commit);
        }
      }
      changed_.notify_all();
      inside_.fetch_sub(1);
    };
  }

  // Waits until a commit with a put of `key` (of `value`, if given) arrived:
  // false if patience ran out first.
  bool wait_for_put(const std::string& key, std::optional<std::string> value = std::nullopt) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] {
      for (const auto& commit : commits_) {
        for (const auto& op : commit.operations) {
          if (op.type == BatchOperation::Type::put && op.key == key && (!value || op.value == *value)) return true;
        }
      }
      return false;
    });
  }

  bool wait_for_commits(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return commits_.size() >= count || !errors_.empty(); });
  }

  bool wait_for_error() {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return !errors_.empty(); });
  }

  std::vector<Commit> commits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commits_;
  }

  std::vector<Ops> operations() {
    std::vector<Ops> out;
    for (const auto& commit : commits()) out.push_back(commit.operations);
    return out;
  }

  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }

  bool overlapped() const { return overlapped_; }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Commit> commits_;
  std::vector<std::string> errors_;
  std::atomic<int> inside_{0};
  std::atomic<bool> overlapped_{false};
};

WatchOptions raw_watch() {
  WatchOptions options;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return options;
}

WatchOptions watch_range(std::optional<std::string> gt, std::optional<std::string> gte,
                         std::optional<std::string> lt, std::optional<std::string> lte) {
  WatchOptions options = raw_watch();
  options.gt = std::move(gt);
  options.gte = std::move(gte);
  options.lt = std::move(lt);
  options.lte = std::move(lte);
  return options;
}

std::vector<uint64_t> seqs_of(const std::vector<Commit>& commits) {
  std::vector<uint64_t> out;
  for (const auto& commit : commits) out.push_back(commit.seq);
  return out;
}

bool strictly_increasing(const std::vector<uint64_t>& seqs) {
  for (size_t i = 1; i < seqs.size(); ++i) {
    if (seqs[i] <= seqs[i - 1]) return false;
  }
  return true;
}

// The code of a refusal, whether watch() throws it or the callback gets it.
std::string refusal(Database& db, const WatchOptions& options) {
  Watcher watcher;
  std::unique_ptr<Watch> watch;
  std::string code = error_code([&] { watch = db.watch(options, watcher.callback()); });
  if (code != "no error") return code;
  if (!watcher.wait_for_error()) return "no error";
  return watcher.errors().front();
}

TYPED_TEST(Watches, WithoutSupportWatchIsRefused) {
  Database& db = this->db();
  if (db.supports().watch) GTEST_SKIP() << "has a change feed (covered below)";
  Watcher watcher;
  EXPECT_LEVEL_ERROR(db.watch(raw_watch(), watcher.callback()), codes::not_supported);
}

TYPED_TEST(Watches, LimitAndReverseDoNotApply) {
  Database& db = this->db();
  Watcher watcher;
  WatchOptions limited = raw_watch();
  limited.limit = 1;
  EXPECT_LEVEL_ERROR(db.watch(limited, watcher.callback()), codes::invalid_argument);
  WatchOptions reversed = raw_watch();
  reversed.reverse = true;
  EXPECT_LEVEL_ERROR(db.watch(reversed, watcher.callback()), codes::invalid_argument);
}

TYPED_TEST(Watches, EveryKindOfWriteArrivesAsItsOperations) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher watcher;
  auto watch = db.watch(raw_watch(), watcher.callback());
  const uint64_t start = watch->seq();
  db.put("a", "1");
  db.del("a");
  db.del("missing");  // a del is published even when the key was not there
  db.batch({BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::del("x")});
  db.batch().put("d", "4").del("b").write();
  ClearOptions first;
  first.gte = "c";
  first.limit = 1;
  db.clear(first);
  db.batch({BatchOperation::put("e", "5"), BatchOperation::put("f", "6")});
  ClearOptions last;
  last.reverse = true;
  last.limit = 1;
  db.clear(last);
  ClearOptions nothing;
  nothing.lt = "a";
  db.clear(nothing);  // deletes nothing: no commit
  db.clear();
  db.put("zz", "end");
  ASSERT_TRUE(watcher.wait_for_put("zz"));
  EXPECT_EQ(watcher.operations(),
            (std::vector<Ops>{{BatchOperation::put("a", "1")},
                              {BatchOperation::del("a")},
                              {BatchOperation::del("missing")},
                              {BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::del("x")},
                              {BatchOperation::put("d", "4"), BatchOperation::del("b")},
                              {BatchOperation::del("c")},
                              {BatchOperation::put("e", "5"), BatchOperation::put("f", "6")},
                              {BatchOperation::del("f")},
                              {BatchOperation::del("d"), BatchOperation::del("e")},
                              {BatchOperation::put("zz", "end")}}));
  auto seqs = seqs_of(watcher.commits());
  EXPECT_TRUE(strictly_increasing(seqs)) << ::testing::PrintToString(seqs);
  EXPECT_GT(seqs.front(), start);
  EXPECT_EQ(watch->seq(), seqs.back());
  EXPECT_TRUE(watcher.errors().empty());
}

TYPED_TEST(Watches, OnlyTheWatchedRangeArrives) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher gte_lt;
  Watcher gt_lte;
  Watcher everything;
  auto w1 = db.watch(watch_range({}, "b", "d", {}), gte_lt.callback());
  auto w2 = db.watch(watch_range("b", {}, {}, "d"), gt_lte.callback());
  auto w3 = db.watch(raw_watch(), everything.callback());
  db.put("a", "1");
  db.put("b", "2");
  db.put("c", "3");
  db.put("d", "4");
  db.batch({BatchOperation::put("a", "x"), BatchOperation::put("b", "x"), BatchOperation::del("d"),
            BatchOperation::put(std::string("b\0", 2), "x")});
  db.batch({BatchOperation::put("0", "x"), BatchOperation::put("e", "x")});  // outside both: no commit for them
  ClearOptions clear;
  clear.gte = "a";
  clear.lte = "c";
  db.clear(clear);
  db.put("c", "end");
  ASSERT_TRUE(gte_lt.wait_for_put("c", "end") && gt_lte.wait_for_put("c", "end"));
  ASSERT_TRUE(everything.wait_for_put("c", "end"));
  const std::string b0("b\0", 2);
  EXPECT_EQ(gte_lt.operations(),
            (std::vector<Ops>{{BatchOperation::put("b", "2")},
                              {BatchOperation::put("c", "3")},
                              {BatchOperation::put("b", "x"), BatchOperation::put(b0, "x")},
                              {BatchOperation::del("b"), BatchOperation::del(b0), BatchOperation::del("c")},
                              {BatchOperation::put("c", "end")}}));
  EXPECT_EQ(gt_lte.operations(),
            (std::vector<Ops>{{BatchOperation::put("c", "3")},
                              {BatchOperation::put("d", "4")},
                              {BatchOperation::del("d"), BatchOperation::put(b0, "x")},
                              {BatchOperation::del(b0), BatchOperation::del("c")},
                              {BatchOperation::put("c", "end")}}));
  // The same commits, with the same sequences, as the watcher of everything saw.
  auto all = everything.commits();
  EXPECT_EQ(all.size(), 8u);
  for (const auto& commit : gt_lte.commits()) {
    bool found = false;
    for (const auto& whole : all) found = found || whole.seq == commit.seq;
    EXPECT_TRUE(found) << commit.seq;
  }
}

TYPED_TEST(Watches, ASublevelWatchesItsOwnRangeWithoutThePrefix) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  auto sub = db.sublevel("s");
  auto sibling = db.sublevel("t");
  auto nested = sub->sublevel("n");
  Watcher root;
  Watcher mine;
  Watcher ranged;
  Watcher deeper;
  auto w1 = db.watch(raw_watch(), root.callback());
  auto w2 = sub->watch(raw_watch(), mine.callback());
  auto w3 = sub->watch(watch_range({}, "b", {}, {}), ranged.callback());
  auto w4 = nested->watch(raw_watch(), deeper.callback());
  db.put("a", "root");
  sibling->put("a", "sibling");
  sub->put("a", "1");
  sub->batch({BatchOperation::put("b", "2"), BatchOperation::del("a")});
  nested->put("x", "3");
  db.put("!s", "beside");
  db.put("!s\"", "upper bound");
  sub->clear();
  sub->put("z", "end");
  ASSERT_TRUE(mine.wait_for_put("z") && ranged.wait_for_put("z") && root.wait_for_put("!s!z"));
  ASSERT_TRUE(deeper.wait_for_commits(2));
  EXPECT_EQ(mine.operations(), (std::vector<Ops>{{BatchOperation::put("a", "1")},
                                                 {BatchOperation::put("b", "2"), BatchOperation::del("a")},
                                                 {BatchOperation::put("!n!x", "3")},
                                                 {BatchOperation::del("!n!x"), BatchOperation::del("b")},
                                                 {BatchOperation::put("z", "end")}}));
  EXPECT_EQ(ranged.operations(), (std::vector<Ops>{{BatchOperation::put("b", "2")},
                                                   {BatchOperation::del("b")},
                                                   {BatchOperation::put("z", "end")}}));
  EXPECT_EQ(deeper.operations(), (std::vector<Ops>{{BatchOperation::put("x", "3")}, {BatchOperation::del("x")}}));
  auto whole = root.operations();
  ASSERT_EQ(whole.size(), 9u);
  EXPECT_EQ(whole[2], (Ops{BatchOperation::put("!s!a", "1")}));
  EXPECT_EQ(whole[4], (Ops{BatchOperation::put("!s!!n!x", "3")}));
  // One sequence for all: the sublevel's commits carry the root's numbers.
  EXPECT_EQ(mine.commits()[0].seq, root.commits()[2].seq);
}

TYPED_TEST(Watches, SinceResumesWithNothingLostAndNothingTwice) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher first;
  auto watch = db.watch(raw_watch(), first.callback());
  const uint64_t start = watch->seq();
  db.put("a", "1");
  db.put("b", "2");
  ASSERT_TRUE(first.wait_for_put("b"));
  auto seen = first.commits();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(watch->seq(), seen[1].seq);
  watch->close();
  db.put("c", "3");

  Watcher resumed;
  WatchOptions options = raw_watch();
  options.since = seen[0].seq;
  auto again = db.watch(options, resumed.callback());
  db.put("d", "4");
  ASSERT_TRUE(resumed.wait_for_put("d"));
  EXPECT_EQ(resumed.operations(), (std::vector<Ops>{{BatchOperation::put("b", "2")},
                                                    {BatchOperation::put("c", "3")},
                                                    {BatchOperation::put("d", "4")}}));
  EXPECT_EQ(resumed.commits()[0].seq, seen[1].seq);

  Watcher from_start;
  options.since = start;
  auto whole = db.watch(options, from_start.callback());
  ASSERT_TRUE(from_start.wait_for_put("d"));
  EXPECT_EQ(from_start.operations().size(), 4u);
  EXPECT_EQ(from_start.commits()[0].seq, seen[0].seq);

  // Resuming at the last commit: only what comes next.
  Watcher at_end;
  options.since = again->seq();
  auto latest = db.watch(options, at_end.callback());
  db.put("e", "5");
  ASSERT_TRUE(at_end.wait_for_put("e"));
  EXPECT_EQ(at_end.operations(), (std::vector<Ops>{{BatchOperation::put("e", "5")}}));
}

TYPED_TEST(Watches, SinceWithARangeResumesInsideIt) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher first;
  auto watch = db.watch(raw_watch(), first.callback());
  const uint64_t start = watch->seq();
  db.put("a", "1");
  db.put("m", "2");
  db.put("z", "3");
  ASSERT_TRUE(first.wait_for_put("z"));
  Watcher ranged;
  WatchOptions options = watch_range({}, "l", "n", {});
  options.since = start;
  auto again = db.watch(options, ranged.callback());
  db.put("m", "end");
  ASSERT_TRUE(ranged.wait_for_commits(2));
  EXPECT_EQ(ranged.errors(), std::vector<std::string>{}) << "since " << start;
  EXPECT_EQ(ranged.operations(),
            (std::vector<Ops>{{BatchOperation::put("m", "2")}, {BatchOperation::put("m", "end")}}));
}

TYPED_TEST(Watches, AResumeTheHistoryCannotServeIsTooOld) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  // Nothing is kept before the first watch, so the first commits are gone.
  db.put("a", "1");
  db.put("b", "2");
  WatchOptions options = raw_watch();
  options.since = 0;
  EXPECT_EQ(refusal(db, options), codes::watch_too_old);
  // A sequence this database never gave out.
  Watcher watcher;
  auto watch = db.watch(raw_watch(), watcher.callback());
  options.since = watch->seq() + 1000000;
  EXPECT_EQ(refusal(db, options), codes::watch_too_old);
  // The watch that was fine goes on.
  db.put("c", "3");
  EXPECT_TRUE(watcher.wait_for_put("c"));
}

TYPED_TEST(Watches, EncodingsApplyToKeysValuesAndBounds) {
  Database& db = this->create(DatabaseOptions{"hex", "json"});
  SKIP_WITHOUT_WATCH(db);
  Watcher defaults;
  Watcher utf8;
  WatchOptions in_hex;
  in_hex.gte = "6b";  // "k"
  auto w1 = db.watch(in_hex, defaults.callback());
  WatchOptions as_text;
  as_text.key_encoding = "utf8";
  as_text.value_encoding = "utf8";
  auto w2 = db.watch(as_text, utf8.callback());
  db.put("61", "\"below\"");
  db.put("6b", "{\"n\":1}");
  db.batch({BatchOperation::put("6c", "[1,2]"), BatchOperation::del("6b")});
  ASSERT_TRUE(defaults.wait_for_put("6c"));
  ASSERT_TRUE(utf8.wait_for_put("l"));
  EXPECT_EQ(defaults.operations(),
            (std::vector<Ops>{{BatchOperation::put("6b", "{\"n\":1}")},
                              {BatchOperation::put("6c", "[1,2]"), BatchOperation::del("6b")}}));
  EXPECT_EQ(utf8.operations(), (std::vector<Ops>{{BatchOperation::put("a", "\"below\"")},
                                                 {BatchOperation::put("k", "{\"n\":1}")},
                                                 {BatchOperation::put("l", "[1,2]"), BatchOperation::del("k")}}));
  Watcher refused;
  WatchOptions bad;
  bad.gte = "not hex";
  EXPECT_LEVEL_ERROR(db.watch(bad, refused.callback()), codes::invalid_key);
}

TYPED_TEST(Watches, AValueThatDoesNotDecodeEndsTheWatch) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher json;
  WatchOptions options;
  options.value_encoding = "json";
  auto watch = db.watch(options, json.callback());
  Watcher witness;
  auto all = db.watch(raw_watch(), witness.callback());
  db.put("a", "1");
  db.put("b", "not json");
  db.put("c", "3");
  ASSERT_TRUE(json.wait_for_error());
  ASSERT_TRUE(witness.wait_for_put("c"));
  EXPECT_EQ(json.errors(), std::vector<std::string>{codes::decode_error});
  EXPECT_EQ(json.operations(), (std::vector<Ops>{{BatchOperation::put("a", "1")}}));
}

TYPED_TEST(Watches, CloseStopsDeliveries) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher closed;
  Watcher destroyed;
  Watcher witness;
  auto w1 = db.watch(raw_watch(), closed.callback());
  auto w2 = db.watch(raw_watch(), destroyed.callback());
  auto w3 = db.watch(raw_watch(), witness.callback());
  db.put("a", "1");
  ASSERT_TRUE(closed.wait_for_put("a") && destroyed.wait_for_put("a"));
  w1->close();
  w1->close();  // idempotent
  w2.reset();
  db.put("b", "2");
  db.put("c", "3");
  ASSERT_TRUE(witness.wait_for_put("c"));
  EXPECT_EQ(closed.operations(), (std::vector<Ops>{{BatchOperation::put("a", "1")}}));
  EXPECT_EQ(destroyed.operations(), (std::vector<Ops>{{BatchOperation::put("a", "1")}}));
  EXPECT_TRUE(closed.errors().empty());
}

TYPED_TEST(Watches, ACallbackMayCloseItsOwnWatch) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  std::mutex mutex;
  std::unique_ptr<Watch> watch;
  std::atomic<int> calls{0};
  Watcher witness;
  auto w = db.watch(raw_watch(), witness.callback());
  {
    std::lock_guard<std::mutex> lock(mutex);
    watch = db.watch(raw_watch(), [&](std::optional<Error>, const Commit&) {
      ++calls;
      std::lock_guard<std::mutex> lock(mutex);
      watch->close();
    });
  }
  db.put("a", "1");
  db.put("b", "2");
  ASSERT_TRUE(witness.wait_for_put("b"));
  // A remote host may send the witness both commits before this watch's
  // first frame: wait (bounded) for its first call, then for one more
  // commit to pass the witness, which a watch still open would get too.
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  db.put("c", "3");
  ASSERT_TRUE(witness.wait_for_put("c"));
  EXPECT_EQ(calls.load(), 1);
  std::lock_guard<std::mutex> lock(mutex);
  watch.reset();
}

TYPED_TEST(Watches, ClosingTheDatabaseEndsItsWatches) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  Watcher watcher;
  auto watch = db.watch(raw_watch(), watcher.callback());
  db.put("a", "1");
  ASSERT_TRUE(watcher.wait_for_put("a"));
  db.close();
  ASSERT_TRUE(watcher.wait_for_error());
  EXPECT_EQ(watcher.errors(), std::vector<std::string>{codes::database_not_open});
  watch->close();
  EXPECT_EQ(watcher.errors().size(), 1u);
  EXPECT_EQ(watcher.operations(), (std::vector<Ops>{{BatchOperation::put("a", "1")}}));
  Watcher late;
  EXPECT_LEVEL_ERROR(db.watch(raw_watch(), late.callback()), codes::database_not_open);
}

// Several threads write at once (puts, dels, batches, clears over shared
// keys); replaying what one watch received must give exactly the database's
// final content, with sequences rising and no two calls overlapping.
TYPED_TEST(Watches, ConcurrentWritersReplayToTheFinalContent) {
  Database& db = this->db();
  SKIP_WITHOUT_WATCH(db);
  fill(db, Model{{"k00", "before"}, {"k05", "before"}});
  Model replayed = Model{{"k00", "before"}, {"k05", "before"}};
  Watcher watcher;
  auto watch = db.watch(raw_watch(), watcher.callback());
  constexpr int kThreads = 4;
  constexpr int kWrites = 150;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&db, t] {
      std::mt19937 random(static_cast<unsigned>(t + 1));
      auto key = [&] {
        char buffer[8];
        std::snprintf(buffer, sizeof(buffer), "k%02d", static_cast<int>(random() % 20));
        return std::string(buffer);
      };
      for (int i = 0; i < kWrites; ++i) {
        std::string value = std::to_string(t) + ":" + std::to_string(i);
        switch (random() % 10) {
          case 0:
          case 1:
            db.del(key(), raw_write);
            break;
          case 2:
          case 3:
            db.batch({BatchOperation::put(key(), value), BatchOperation::del(key()), BatchOperation::put(key(), value)},
                     raw_write);
            break;
          case 4: {
            ClearOptions range;
            range.gte = key();
            range.limit = static_cast<int64_t>(random() % 3);
            range.reverse = random() % 2 == 0;
            range.key_encoding = "buffer";
            db.clear(range);
            break;
          }
          default:
            db.put(key(), value, raw_write);
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  db.put("zz-end", "end", raw_write);
  ASSERT_TRUE(watcher.wait_for_put("zz-end"));
  auto commits = watcher.commits();
  for (const auto& commit : commits) {
    for (const auto& op : commit.operations) {
      if (op.type == BatchOperation::Type::put) {
        replayed[op.key] = op.value;
      } else {
        replayed.erase(op.key);
      }
    }
  }
  EXPECT_EQ(entries_of(replayed), contents(db));
  EXPECT_TRUE(strictly_increasing(seqs_of(commits)));
  EXPECT_FALSE(watcher.overlapped());
  EXPECT_TRUE(watcher.errors().empty());
}

}  // namespace
}  // namespace contract
