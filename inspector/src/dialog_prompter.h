// The Prompter of the app: a QMessageBox to confirm, a KeyEditDialog to edit.
#pragma once

#include "prompter.h"

namespace inspector {

class DialogPrompter : public Prompter {
 public:
  bool confirm(QWidget* parent, const QString& title, const QString& text) override;
  std::optional<EntryEdit> editEntry(QWidget* parent, const EntryEdit& initial, bool existing) override;
};

}  // namespace inspector
