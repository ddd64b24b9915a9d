// How the key browser asks the user things: confirm a write, edit an entry.
// The app uses dialogs (DialogPrompter); tests put in one that answers at
// once, so the write paths run exactly as from a click.
#pragma once

#include <QString>

#include <optional>
#include <string>

class QWidget;

namespace inspector {

// An entry as the user edits it: raw bytes, the key without the browsed
// sublevel's prefix.
struct EntryEdit {
  std::string key;
  std::string value;
};

class Prompter {
 public:
  virtual ~Prompter() = default;
  virtual bool confirm(QWidget* parent, const QString& title, const QString& text) = 0;
  // nullopt when cancelled. With `existing`, the key cannot be changed.
  virtual std::optional<EntryEdit> editEntry(QWidget* parent, const EntryEdit& initial, bool existing) = 0;
};

}  // namespace inspector
