// How SqliteDatabase fails: bad paths, foreign and corrupt files, a database
// another connection is writing, and the open options. Each failure is an
// Error naming the file, never a crash, and a later open can still succeed.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>

#include "many_level.hpp"
#include "temp_dir.hpp"

using namespace many_level;

namespace {

// The Error that `body` throws (or a failure when it throws none).
template <typename Body>
Error error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected an Error";
  return Error("NONE", "no error");
}

::testing::AssertionResult mentions(const Error& error, const std::string& text) {
  if (std::string(error.what()).find(text) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << error.what() << "' does not mention '" << text << "'";
}

SqliteOptions impatient() {
  SqliteOptions options;
  options.busy_timeout = std::chrono::milliseconds(50);
  return options;
}

// Another connection, through SQLite alone, as another process would hold it.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db_);
  }
  ~RawConnection() { sqlite3_close(db_); }
  void exec(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (message ? message : "?");
    }
    sqlite3_free(message);
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

TEST(SqliteErrors, AMissingDirectoryIsAnIoErrorNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("nowhere/db");
  SqliteDatabase db(path);
  Error error = error_of([&] { db.open(); });
  EXPECT_EQ(error.code(), codes::io_error);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "unable to open database file"));
  EXPECT_TRUE(mentions(error, "No such file or directory"));
  EXPECT_EQ(db.status(), Status::closed);
  // Later calls say the database did not open, and why.
  Error later = error_of([&] { db.put("a", "1"); });
  EXPECT_EQ(later.code(), codes::database_not_open);
  EXPECT_TRUE(mentions(later, path));
}

TEST(SqliteErrors, ADirectoryIsAnIoErrorNamingThePath) {
  TempDir dir;
  const std::string path = dir.path().string();
  SqliteDatabase db(path);
  Error error = error_of([&] { db.open(); });
  EXPECT_EQ(error.code(), codes::io_error);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "directory"));
}

TEST(SqliteErrors, AnUnwritableDirectoryIsAnIoError) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  TempDir dir;
  std::filesystem::create_directory(dir.path() / "locked");
  ASSERT_EQ(chmod((dir.path() / "locked").c_str(), 0500), 0);
  const std::string path = dir.file("locked/db");
  SqliteDatabase db(path);
  Error error = error_of([&] { db.open(); });
  chmod((dir.path() / "locked").c_str(), 0700);
  EXPECT_EQ(error.code(), codes::io_error);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "Permission denied"));
}

TEST(SqliteErrors, AFileOfGarbageIsCorruption) {
  TempDir dir;
  const std::string path = dir.file("garbage");
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 random(1);
    for (int i = 0; i < 8192; ++i) out.put(static_cast<char>(random()));
  }
  SqliteDatabase db(path);
  Error error = error_of([&] { db.open(); });
  EXPECT_EQ(error.code(), codes::corruption);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "file is not a database"));
}

TEST(SqliteErrors, ATableOfAnotherShapeFailsOpen) {
  TempDir dir;
  const std::string path = dir.file("foreign");
  RawConnection(path).exec("CREATE TABLE kv (a, b)");
  SqliteDatabase db(path);
  Error error = error_of([&] { db.open(); });
  EXPECT_EQ(error.code(), codes::io_error);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "no column named key"));
}

TEST(SqliteErrors, AWriteLockHeldElsewhereFailsOpenAsLocked) {
  TempDir dir;
  const std::string path = dir.file("db");
  { SqliteDatabase(path).put("a", "1"); }
  RawConnection other(path);
  other.exec("BEGIN IMMEDIATE");
  SqliteDatabase db(path, impatient());
  Error error = error_of([&] { db.open(); });
  EXPECT_EQ(error.code(), codes::locked);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_TRUE(mentions(error, "database is locked"));
  other.exec("COMMIT");
  db.open();  // the lock is gone: the same object opens now
  EXPECT_EQ(db.get("a"), "1");
}

TEST(SqliteErrors, AWriteLockHeldElsewhereFailsWritesAsLockedButNotReads) {
  TempDir dir;
  const std::string path = dir.file("db");
  SqliteDatabase db(path, impatient());
  db.put("a", "1");
  RawConnection other(path);
  other.exec("BEGIN IMMEDIATE");
  Error error = error_of([&] { db.put("b", "2"); });
  EXPECT_EQ(error.code(), codes::locked);
  EXPECT_TRUE(mentions(error, path));
  EXPECT_EQ(error_of([&] { db.batch({BatchOperation::del("a")}); }).code(), codes::locked);
  EXPECT_EQ(db.get("a"), "1");  // WAL readers do not wait for writers
  other.exec("COMMIT");
  db.put("c", "3");
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"a", "c"}));
}

TEST(SqliteErrors, CreateIfMissingFalseRefusesAMissingFile) {
  TempDir dir;
  const std::string path = dir.file("db");
  SqliteDatabase db(path);
  OpenOptions options;
  options.create_if_missing = false;
  Error error = error_of([&] { db.open(options); });
  EXPECT_EQ(error.code(), codes::database_not_open);
  EXPECT_TRUE(mentions(error, "does not exist"));
  EXPECT_FALSE(std::filesystem::exists(path));
  db.open();  // the default creates it
  db.put("a", "1");
  db.close();
  db.open(options);  // and now it exists
  EXPECT_EQ(db.get("a"), "1");
}

TEST(SqliteErrors, ErrorIfExistsRefusesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("db");
  SqliteDatabase db(path);
  OpenOptions options;
  options.error_if_exists = true;
  db.open(options);  // missing, so created
  db.put("a", "1");
  db.close();
  Error error = error_of([&] { db.open(options); });
  EXPECT_EQ(error.code(), codes::database_not_open);
  EXPECT_TRUE(mentions(error, "exists"));
  db.open();
  EXPECT_EQ(db.get("a"), "1");  // refusing did not touch the data
}

TEST(SqliteErrors, InMemoryPathsAreRefused) {
  for (const char* path : {"", ":memory:"}) {
    SqliteDatabase db(path);
    EXPECT_EQ(error_of([&] { db.open(); }).code(), codes::invalid_argument) << "'" << path << "'";
  }
}
