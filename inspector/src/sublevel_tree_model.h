// The sublevels of a database as a tree: abstract-level's `!name!` key
// prefixes, nested (`!a!!b!`). Found lazily: a node's children are searched
// for only when it is expanded (canFetchMore/fetchMore), by a skip scan on
// the background loader that costs one seek per sublevel, however many keys
// each holds. The top item is the whole database (prefix "").
#pragma once

#include <QAbstractItemModel>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "background_loader.h"
#include "key_queries.hpp"
#include "many_level/database.hpp"

namespace inspector {

class SublevelTreeModel : public QAbstractItemModel {
  Q_OBJECT

 public:
  enum Role { PrefixRole = Qt::UserRole + 1 };  // QByteArray: the node's raw key prefix

  explicit SublevelTreeModel(many_level::Database& db, QueryHooks hooks = {}, QObject* parent = nullptr);
  ~SublevelTreeModel() override;

  // Names read per fetch; a node with more is fetched in several steps.
  void setScanBudget(size_t steps) { budget_ = std::max<size_t>(1, steps); }
  // Forgets every node found and starts over.
  void reload();

  // The database item (the top row).
  QModelIndex databaseIndex() const { return index(0, 0); }
  QModelIndex indexOfPrefix(const std::string& prefix) const;
  std::string prefixOf(const QModelIndex& index) const;
  bool isIdle() const { return loader_.idle(); }

  QModelIndex index(int row, int column, const QModelIndex& parent = QModelIndex()) const override;
  QModelIndex parent(const QModelIndex& child) const override;
  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  bool hasChildren(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  bool canFetchMore(const QModelIndex& parent) const override;
  void fetchMore(const QModelIndex& parent) override;

 signals:
  // Children of `parent` were found (or the search for them ended).
  void childrenFetched(const QModelIndex& parent);
  void loadFailed(const QString& message);

 private:
  struct Node {
    std::string name;
    std::string prefix;
    Node* parent = nullptr;
    std::vector<std::unique_ptr<Node>> children;
    bool complete = false;               // every child has been found
    std::optional<std::string> resume;   // where the search goes on
    int row = 0;                          // in its parent
  };

  Node* nodeOf(const QModelIndex& index) const;
  QModelIndex indexOf(const Node* node) const;
  void applyScan(uint64_t generation, const std::string& prefix, SublevelScan& scan);

  many_level::Database& db_;
  QueryHooks hooks_;
  Node root_;  // invisible; its one child is the database
  std::map<std::string, Node*> by_prefix_;
  uint64_t generation_ = 0;
  size_t budget_ = 256;
  mutable BackgroundLoader loader_{"sublevel-loader"};
};

}  // namespace inspector
