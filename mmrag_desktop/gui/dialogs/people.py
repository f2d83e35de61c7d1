"""The people in the library (:mod:`...library.people`): one face per person, the most
photographed first, with their photo counts. *Show photos* filters the library to a person
(combined with the search and the other filters); *Name…*, *Merge into…* and *Hide* correct
what the grouping did, and are never undone by it."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..adapters.bridge import LibraryBridge

FACE_SIDE = 112

HINT = ("Faces are found as photos are read and grouped into people: two photos of the same "
        "face make a person. Name people to search for them (“Anna at the beach”); merge two "
        "that are one person; in a photo's preview, correct a face that is someone else.")


def _qimage(image) -> QImage:
    """A PIL RGB image as a QImage that owns its pixels (safe to hand to the GUI thread)."""
    data = image.convert("RGB").tobytes()
    return QImage(data, image.width, image.height, 3 * image.width,
                  QImage.Format.Format_RGB888).copy()


class PeopleDialog(QDialog):
    """Emits ``show_requested(person id, name)`` to filter the library to a person."""

    show_requested = Signal(int, str)

    def __init__(self, bridge: LibraryBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.setWindowTitle("People")
        self.resize(760, 560)
        hint = QLabel(HINT, wordWrap=True)
        hint.setTextFormat(Qt.TextFormat.PlainText)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(FACE_SIDE, FACE_SIDE))
        self.list.setGridSize(QSize(FACE_SIDE + 40, FACE_SIDE + 48))
        self.list.setWordWrap(True)
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.list.itemDoubleClicked.connect(lambda _item: self._show())
        self.list.itemSelectionChanged.connect(self._enable)
        self.show_hidden = QCheckBox("Show hidden people")
        self.show_hidden.toggled.connect(lambda _on: self.load())
        self.buttons = {}
        row = QHBoxLayout()
        for text, slot in (("Show photos", self._show), ("Name…", self._name),
                           ("Merge…", self._merge), ("Hide", self._hide)):
            button = QPushButton(text)
            button.setAutoDefault(False)
            button.clicked.connect(slot)
            self.buttons[text] = button
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(self.show_hidden)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        self._people: dict[int, object] = {}
        self._enable()

    def load(self) -> None:
        """List the people again, with a face of each (read in the background)."""
        hidden = self.show_hidden.isChecked()

        def people(engine):
            out = []
            for person in engine.people.everyone(include_hidden=hidden):
                try:
                    face = _qimage(engine.people.face_image(person.cover, FACE_SIDE))
                except Exception:  # noqa: BLE001 - a photo gone or unreadable: no picture
                    face = QImage()
                out.append((person, face))
            return out

        self.bridge.op(people).success(self._listed).run()

    def _listed(self, people: list) -> None:
        self.list.clear()
        self._people = {}
        for person, face in people:
            name = person.name or "Unnamed"
            item = QListWidgetItem(f"{name}\n{person.photos:,} photos")
            if not face.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(face)))
            item.setData(Qt.ItemDataRole.UserRole, person.id)
            item.setToolTip(f"{name}: {person.faces:,} faces in {person.photos:,} photos"
                            + (" (hidden)" if person.hidden else ""))
            if person.hidden:
                item.setForeground(self.palette().placeholderText())
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)
            self._people[person.id] = person
        if not people:
            empty = QListWidgetItem("No people yet: faces are found as photos are read.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(empty)
        self._enable()

    def _chosen(self) -> list[int]:
        return [item.data(Qt.ItemDataRole.UserRole) for item in self.list.selectedItems()
                if item.data(Qt.ItemDataRole.UserRole) is not None]

    def _enable(self) -> None:
        chosen = self._chosen()
        for text in ("Show photos", "Name…", "Hide"):
            self.buttons[text].setEnabled(len(chosen) == 1)
        self.buttons["Merge…"].setEnabled(len(chosen) == 2)
        if len(chosen) == 1:
            hidden = self._people[chosen[0]].hidden
            self.buttons["Hide"].setText("Show" if hidden else "Hide")

    def _show(self) -> None:
        chosen = self._chosen()
        if len(chosen) == 1:
            person = self._people[chosen[0]]
            self.show_requested.emit(person.id, person.name or "Unnamed")

    def _name(self) -> None:
        [person] = [self._people[i] for i in self._chosen()]
        name, ok = QInputDialog.getText(self, "Name", "Who is this?", text=person.name)
        if ok and name.strip():
            self._change(lambda engine: engine.people.name(person.id, name))

    def _merge(self) -> None:
        """The two selected people are one: the first named (or the first) keeps the name."""
        a, b = (self._people[i] for i in self._chosen())
        into, other = (b, a) if (b.name and not a.name) else (a, b)
        self._change(lambda engine: engine.people.merge(into.id, other.id))

    def _hide(self) -> None:
        [person] = [self._people[i] for i in self._chosen()]
        self._change(lambda engine: engine.people.hide(person.id, not person.hidden))

    def _change(self, fn) -> None:
        self.bridge.op(fn, lane="jobs").success(lambda _r: self._changed()) \
            .failure(lambda error: self.bridge.message.emit(error)).run()

    def _changed(self) -> None:
        self.load()
        self.bridge.refresh()
