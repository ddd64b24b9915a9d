#include "sublevel_tree_model.h"

#include "bytes_text.hpp"

namespace inspector {

SublevelTreeModel::SublevelTreeModel(many_level::Database& db, QueryHooks hooks, QObject* parent)
    : QAbstractItemModel(parent), db_(db), hooks_(std::move(hooks)) {
  root_.complete = true;
  reload();
}

SublevelTreeModel::~SublevelTreeModel() { loader_.cancel_all(); }

void SublevelTreeModel::reload() {
  beginResetModel();
  ++generation_;
  loader_.cancel_all();
  root_.children.clear();
  by_prefix_.clear();
  auto database = std::make_unique<Node>();
  database->parent = &root_;
  by_prefix_[""] = database.get();
  root_.children.push_back(std::move(database));
  endResetModel();
}

SublevelTreeModel::Node* SublevelTreeModel::nodeOf(const QModelIndex& index) const {
  if (!index.isValid()) return const_cast<Node*>(&root_);
  return static_cast<Node*>(index.internalPointer());
}

QModelIndex SublevelTreeModel::indexOf(const Node* node) const {
  if (!node || node == &root_) return {};
  return createIndex(node->row, 0, const_cast<Node*>(node));
}

QModelIndex SublevelTreeModel::indexOfPrefix(const std::string& prefix) const {
  auto found = by_prefix_.find(prefix);
  return found == by_prefix_.end() ? QModelIndex() : indexOf(found->second);
}

std::string SublevelTreeModel::prefixOf(const QModelIndex& index) const {
  return index.isValid() ? nodeOf(index)->prefix : std::string();
}

QModelIndex SublevelTreeModel::index(int row, int column, const QModelIndex& parent) const {
  if (column != 0 || row < 0) return {};
  if (parent.isValid() && parent.column() != 0) return {};
  const Node* node = nodeOf(parent);
  if (static_cast<size_t>(row) >= node->children.size()) return {};
  return createIndex(row, 0, node->children[static_cast<size_t>(row)].get());
}

QModelIndex SublevelTreeModel::parent(const QModelIndex& child) const {
  if (!child.isValid()) return {};
  return indexOf(nodeOf(child)->parent);
}

int SublevelTreeModel::rowCount(const QModelIndex& parent) const {
  if (parent.isValid() && parent.column() != 0) return 0;
  return static_cast<int>(nodeOf(parent)->children.size());
}

int SublevelTreeModel::columnCount(const QModelIndex&) const { return 1; }

bool SublevelTreeModel::hasChildren(const QModelIndex& parent) const {
  if (parent.isValid() && parent.column() != 0) return false;
  const Node* node = nodeOf(parent);
  return !node->children.empty() || !node->complete;
}

QVariant SublevelTreeModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid()) return {};
  const Node* node = nodeOf(index);
  const bool database = node->parent == &root_;
  switch (role) {
    case Qt::DisplayRole:
      return database ? tr("(database)") : QString::fromStdString(escape_bytes(node->name));
    case Qt::ToolTipRole:
      return database ? tr("every key") : tr("keys prefixed %1").arg(QString::fromStdString(escape_bytes(node->prefix)));
    case PrefixRole: return QByteArray(node->prefix.data(), static_cast<qsizetype>(node->prefix.size()));
  }
  return {};
}

bool SublevelTreeModel::canFetchMore(const QModelIndex& parent) const {
  if (!parent.isValid()) return false;
  return !nodeOf(parent)->complete;
}

void SublevelTreeModel::fetchMore(const QModelIndex& parent) {
  if (!parent.isValid()) return;
  const Node* node = nodeOf(parent);
  if (node->complete) return;
  const std::string prefix = node->prefix;
  const std::string key = std::to_string(generation_) + ":" + prefix;
  if (loader_.pending(key)) return;
  const auto resume = node->resume;
  const uint64_t generation = generation_;
  const size_t budget = budget_;
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  loader_.submit(this, key, BackgroundLoader::user, [=]() -> BackgroundLoader::Delivery {
    try {
      auto scan = std::make_shared<SublevelScan>(discover_sublevels(*db, prefix, resume, budget, hooks));
      return [this, generation, prefix, scan] { applyScan(generation, prefix, *scan); };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [this, generation, message] {
        if (generation == generation_) emit loadFailed(QString::fromStdString(message));
      };
    }
  });
}

void SublevelTreeModel::applyScan(uint64_t generation, const std::string& prefix, SublevelScan& scan) {
  if (generation != generation_) return;
  auto found = by_prefix_.find(prefix);
  if (found == by_prefix_.end()) return;
  Node* node = found->second;
  const QModelIndex parent = indexOf(node);
  // State first: a view (or QAbstractItemModelTester) may ask canFetchMore
  // and fetchMore from inside the insertion below, and must then go on
  // from where this scan stopped, not start it again.
  node->resume = std::move(scan.resume);
  node->complete = !node->resume;
  if (!scan.names.empty()) {
    const int first = static_cast<int>(node->children.size());
    beginInsertRows(parent, first, first + static_cast<int>(scan.names.size()) - 1);
    for (auto& name : scan.names) {
      auto child = std::make_unique<Node>();
      child->prefix = prefix + "!" + name + "!";
      child->name = std::move(name);
      child->parent = node;
      child->row = static_cast<int>(node->children.size());
      by_prefix_[child->prefix] = child.get();
      node->children.push_back(std::move(child));
    }
    endInsertRows();
  }
  // A leaf loses its expand arrow.
  if (node->complete && node->children.empty() && parent.isValid()) emit dataChanged(parent, parent);
  emit childrenFetched(parent);
}

}  // namespace inspector
