// Every public method is thread-safe: concurrent writers, readers and
// iterators, atomic batches seen through snapshots, and close() racing
// running calls. Threads meet at a barrier rather than sleeping, and every
// loop is bounded by a count, never by time.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Concurrency = Contract<Factory>;
TYPED_TEST_SUITE(Concurrency, Factories, FactoryName);

// Runs `body(i)` on `count` threads released together; returns what each
// threw ("no error" when nothing).
std::vector<std::string> run_together(int count, const std::function<void(int)>& body) {
  std::mutex mutex;
  std::condition_variable ready;
  int arrived = 0;
  std::vector<std::string> outcomes(count);
  std::vector<std::thread> threads;
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mutex);
        if (++arrived == count) ready.notify_all();
        ready.wait(lock, [&] { return arrived == count; });
      }
      outcomes[i] = error_code([&] { body(i); });
    });
  }
  for (auto& thread : threads) thread.join();
  return outcomes;
}

void expect_no_errors(const std::vector<std::string>& outcomes) {
  for (size_t i = 0; i < outcomes.size(); ++i) EXPECT_EQ(outcomes[i], "no error") << "thread " << i;
}

std::string key_of(int thread, int i) { return "t" + std::to_string(thread) + "/" + std::to_string(1000 + i); }

TYPED_TEST(Concurrency, WritersOfDisjointKeys) {
  Database& db = this->db();
  constexpr int threads = 4;
  constexpr int writes = 150;
  expect_no_errors(run_together(threads, [&](int t) {
    for (int i = 0; i < writes; ++i) {
      switch (i % 3) {
        case 0: db.put(key_of(t, i), std::to_string(i)); break;
        case 1: db.batch({BatchOperation::put(key_of(t, i), std::to_string(i)), BatchOperation::del(key_of(t, i - 1))}); break;
        case 2: db.batch().put(key_of(t, i - 2), std::to_string(i - 2)).put(key_of(t, i), std::to_string(i)).write(); break;
      }
    }
  }));
  Model model;
  for (int t = 0; t < threads; ++t) {
    for (int i = 0; i < writes; ++i) model[key_of(t, i)] = std::to_string(i);
  }
  EXPECT_EQ(contents(db), entries_of(model));
}

TYPED_TEST(Concurrency, Readers) {
  Database& db = this->db();
  const Model model = binary_model();
  fill(db, model);
  const auto all = entries_of(model);
  expect_no_errors(run_together(4, [&](int t) {
    for (int round = 0; round < 40; ++round) {
      const auto& entry = all[(t * 7 + round) % all.size()];
      if (db.get(entry.key) != entry.value) throw std::runtime_error("get returned a wrong value");
      if (db.get_many({entry.key, "missing"})[0] != entry.value) throw std::runtime_error("get_many went wrong");
      if (round % 8 == 0 && db.iterator()->all() != all) throw std::runtime_error("iteration went wrong");
      IteratorOptions reverse;
      reverse.reverse = true;
      reverse.limit = 3;
      if (db.keys(reverse).all().size() != 3) throw std::runtime_error("reverse limited iteration went wrong");
    }
  }));
}

// A writer replaces every value in one batch per generation. Where iterators
// have snapshots, each one sees a single generation; everywhere, what a
// reader sees is sorted, complete and one of the written values.
TYPED_TEST(Concurrency, IteratorsSeeWholeBatches) {
  Database& db = this->db();
  const bool snapshots = db.supports().snapshots;
  constexpr int keys = 40;
  constexpr int generations = 30;
  auto generation = [&](int g) {
    std::vector<BatchOperation> operations;
    for (int k = 0; k < keys; ++k) operations.push_back(BatchOperation::put(key_of(0, k), std::to_string(g)));
    db.batch(operations);
  };
  generation(0);
  std::atomic<bool> writing{true};
  auto outcomes = run_together(3, [&](int t) {
    if (t == 0) {
      for (int g = 1; g <= generations; ++g) generation(g);
      writing = false;
      return;
    }
    // Readers run at least a few rounds, and until the writer is done.
    for (int round = 0; round < 5 || writing; ++round) {
      auto entries = (t == 1) ? db.iterator()->all() : drain_by_nextv(*db.iterator(), 7);
      if (entries.size() != keys) throw std::runtime_error("saw " + std::to_string(entries.size()) + " keys");
      for (int k = 0; k < keys; ++k) {
        if (entries[k].key != key_of(0, k)) throw std::runtime_error("keys out of order");
        if (snapshots && entries[k].value != entries[0].value) throw std::runtime_error("saw a batch half-applied");
      }
    }
  });
  expect_no_errors(outcomes);
  EXPECT_EQ(db.get(key_of(0, 0)), std::to_string(generations));
}

// Several threads reading one shared iterator get each entry exactly once.
TYPED_TEST(Concurrency, SharedIterator) {
  Database& db = this->db();
  Model model;
  for (int i = 0; i < 400; ++i) model[key_of(1, i)] = std::to_string(i);
  fill(db, model);
  auto iterator = db.iterator();
  std::vector<std::vector<Entry>> seen(4);
  expect_no_errors(run_together(4, [&](int t) {
    for (;;) {
      auto chunk = t % 2 ? iterator->nextv(3) : std::vector<Entry>{};
      if (t % 2 == 0) {
        if (auto entry = iterator->next()) chunk.push_back(std::move(*entry));
      }
      if (chunk.empty()) return;
      for (auto& entry : chunk) seen[t].push_back(std::move(entry));
    }
  }));
  Model merged;
  size_t total = 0;
  for (const auto& entries : seen) {
    total += entries.size();
    for (const auto& entry : entries) merged[entry.key] = entry.value;
  }
  EXPECT_EQ(total, model.size());
  EXPECT_EQ(merged, model);
}

// close() while other threads keep calling: each call either completes or
// fails with LEVEL_DATABASE_NOT_OPEN, and once close() returns, every call fails.
TYPED_TEST(Concurrency, CloseWhileOthersAreCalling) {
  Database& db = this->db();
  db.put("seed", "x");
  constexpr int workers = 3;
  std::mutex mutex;
  std::condition_variable started;
  int running = 0;
  std::atomic<bool> closed{false};
  std::vector<std::string> failures(workers);
  std::vector<std::thread> threads;
  for (int t = 0; t < workers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        bool after_close = closed;
        std::string outcome = error_code([&] {
          switch (i % 4) {
            case 0: db.put(key_of(t, i), "v"); break;
            case 1: db.get("seed"); break;
            case 2: db.iterator()->nextv(2); break;
            case 3: db.batch({BatchOperation::del(key_of(t, i - 1))}); break;
          }
        });
        if (i == 0) {
          std::lock_guard<std::mutex> lock(mutex);
          ++running;
          started.notify_all();
        }
        if (outcome == codes::database_not_open || outcome == codes::iterator_not_open) return;
        if (outcome != "no error" || after_close) {
          failures[t] = after_close ? "a call succeeded after close() returned" : outcome;
          return;
        }
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    started.wait(lock, [&] { return running == workers; });
  }
  db.close();
  closed = true;
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < workers; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;
  EXPECT_EQ(db.status(), Status::closed);
  EXPECT_EQ(db.open_iterator_count(), 0u);
}

}  // namespace
}  // namespace contract
