#include "dialog_prompter.h"

#include <QMessageBox>

#include "key_edit_dialog.h"

namespace inspector {

bool DialogPrompter::confirm(QWidget* parent, const QString& title, const QString& text) {
  return QMessageBox::question(parent, title, text, QMessageBox::Yes | QMessageBox::Cancel, QMessageBox::Cancel) ==
         QMessageBox::Yes;
}

std::optional<EntryEdit> DialogPrompter::editEntry(QWidget* parent, const EntryEdit& initial, bool existing) {
  KeyEditDialog dialog(initial, existing, parent);
  if (dialog.exec() != QDialog::Accepted) return std::nullopt;
  return dialog.entry();
}

}  // namespace inspector
