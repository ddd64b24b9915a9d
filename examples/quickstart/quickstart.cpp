// The shortest tour of many-level for C++: a host serving a SQLite database
// over TCP, and a guest using it like a local database. With --connect ADDR
// it is only the guest, of a host that runs elsewhere (`many-level serve`).
#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "many_level.hpp"

using namespace many_level;

int main(int argc, char** argv) {
  std::string address;
  std::string db_path = "./many-level.db";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i];
    if (option == "--connect") address = argv[i + 1];
    if (option == "--db") db_path = argv[i + 1];
  }

  try {
    // The host side: any Database behind a Host, listening on loopback.
    std::unique_ptr<SqliteDatabase> db;
    std::unique_ptr<Host> host;
    std::unique_ptr<EventLoop> loop;
    if (address.empty()) {
      db = std::make_unique<SqliteDatabase>(db_path);
      host = std::make_unique<Host>(*db);
      loop = std::make_unique<EventLoop>();
      address = loop->listen("tcp://127.0.0.1:0", [&](const ConnectionInfo&) { return host->create_session(); })
                    .to_string();
      loop->start();
      std::cout << "host: serving " << db_path << " on " << address << "\n";
    }

    // The guest side: a Database whose data lives on the host.
    GuestOptions options;
    options.retry = true;  // ride through reconnects
    Guest guest(options);
    Connector connector(guest, address);
    if (!connector.wait_connected(std::chrono::seconds(5))) {
      std::cerr << "quickstart: cannot reach a host at " << address << "\n";
      return 1;
    }
    std::cout << "guest: connected to " << address << "\n";

    guest.put("greeting", "hello from C++");
    std::cout << "get greeting -> " << guest.get("greeting") << "\n";

    guest.batch({BatchOperation::put("fruit:apple", "red"), BatchOperation::put("fruit:banana", "yellow"),
                 BatchOperation::put("fruit:cherry", "dark red")});
    IteratorOptions fruits;
    fruits.gte = "fruit:";
    fruits.lt = "fruit;";
    std::cout << "fruits, in key order:\n";
    for (const auto& entry : guest.iterator(fruits)->all()) std::cout << "  " << entry.key << " = " << entry.value << "\n";

    // A sublevel is a prefix (!users!) that Node's abstract-level shares.
    auto users = guest.sublevel("users", SublevelOptions{'!', "utf8", "json"});
    users->put("ada", R"({"born": 1815, "languages": ["Analytical Engine"]})");
    std::cout << "users.get(ada) -> " << users->get("ada") << "\n";
    std::cout << "the same entry seen from the root: !users!ada -> " << guest.get("!users!ada") << "\n";

    auto stats = guest.stats();
    std::cout << "guest stats: " << stats.frames_out << " frames out, " << stats.frames_in << " frames in, "
              << stats.bytes_in << " bytes in\n";
    guest.close();
    return 0;
  } catch (const Error& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
