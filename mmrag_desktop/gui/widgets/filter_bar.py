"""The row under the search field: chips for the folder, the people and the place chosen, the camera,
concept and album menus, favourites, a minimum rating, the date range, and what is shown (a
count, and "Show all" for weak matches)."""

from __future__ import annotations

import os

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...domain.query import Filters
from . import plain
from .layouts import Retired


class FilterBar(QWidget):
    """Filters as people set them; :meth:`filters` reads them as :class:`Filters`.

    Signals: ``changed`` (a filter changed), ``folder_cleared`` and ``place_cleared`` (their
    chip was clicked), ``show_all`` (the "Show all" button toggled), ``understood_removed``
    (a chip of what the query was understood to ask was clicked: the words it came from).
    The people chip clears itself (and emits ``changed``)."""

    changed = Signal()
    understood_removed = Signal(str)  # the words typed for a part understood (remove them)
    folder_cleared = Signal()
    place_cleared = Signal()
    show_all = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = ""  # the folder chosen in the folders panel ("" for all)
        self.place: tuple[float, float, float] | None = None  # (lat, lon, km): "near here"
        self.concept_names: list[str] = []
        self.album_names: dict[int, str] = {}  # album id → name
        self.folder_chip = QToolButton()
        self.folder_chip.setToolTip("Browsing one folder — click to see the whole library")
        self.folder_chip.clicked.connect(self.folder_cleared)
        self.folder_chip.hide()
        self.people: dict[int, str] = {}  # person id → name: photos with all of them
        self.people_chip = QToolButton()
        self.people_chip.setToolTip("Only photos showing all of these people — click to remove")
        self.people_chip.clicked.connect(lambda: self.set_people({}))
        self.people_chip.hide()
        self.place_chip = QToolButton()
        self.place_chip.setToolTip("Only photos taken near this place — click to remove")
        self.place_chip.clicked.connect(self.place_cleared)
        self.place_chip.hide()
        self.camera_filter = QComboBox()
        self.camera_filter.addItem("All cameras", None)
        self.camera_filter.currentIndexChanged.connect(self.changed)
        self.concept_filter = QComboBox()
        self.concept_filter.setToolTip("Only photos tagged with one of your concepts")
        self.concept_filter.addItem("Any concept", None)
        self.concept_filter.currentIndexChanged.connect(self.changed)
        self.concept_filter.hide()
        self.album_filter = QComboBox()
        self.album_filter.setToolTip("Only photos in one of your albums")
        self.album_filter.addItem("Any album", None)
        self.album_filter.currentIndexChanged.connect(self.changed)
        self.album_filter.hide()
        self.marks_filter = QComboBox()
        self.marks_filter.setToolTip("Only favourites (mark a photo: . or its menu), or photos "
                                     "rated at least this many stars (rate: keys 1–5)")
        self.marks_filter.addItem("Any rating", None)
        self.marks_filter.addItem("♥ Favourites", "favourites")
        for stars in range(1, 6):
            self.marks_filter.addItem("★" * stars + (" or more" if stars < 5 else ""), stars)
        self.marks_filter.currentIndexChanged.connect(self.changed)
        self.after_check, self.after = QCheckBox("Taken from"), QDateEdit(calendarPopup=True)
        self.before_check, self.before = QCheckBox("to"), QDateEdit(calendarPopup=True)
        today = QDate.currentDate()
        self.after.setDate(today.addYears(-1))
        self.before.setDate(today)
        for check, edit in ((self.after_check, self.after), (self.before_check, self.before)):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            check.toggled.connect(edit.setEnabled)
            check.toggled.connect(self.changed)
            edit.dateChanged.connect(self.changed)
        self.result_count = plain.ElidedLabel()  # never widens the window: elided
        self.show_all_button = QPushButton("Show all", checkable=True)
        self.show_all_button.setToolTip("Show the weak matches too (results scoring well "
                                        "below the best one)")
        self.show_all_button.toggled.connect(self.show_all)
        self.show_all_button.hide()
        # The chips — the folder, people and place chosen, and what the query was understood
        # to ask — on a row of their own that scrolls and never widens the window.
        self.understood = QWidget()  # "Understood:" and a chip per part of the query
        self.understood_row = QHBoxLayout(self.understood)
        self._retired = Retired()
        self.understood_row.setContentsMargins(0, 0, 0, 0)
        self.understood.hide()
        chips = QWidget()
        chip_row = QHBoxLayout(chips)
        chip_row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.folder_chip, self.people_chip, self.place_chip, self.understood):
            chip_row.addWidget(widget)
        chip_row.addStretch(1)
        self.chips = QScrollArea()
        self.chips.setWidget(chips)
        self.chips.setWidgetResizable(True)
        self.chips.setFrameShape(QFrame.Shape.NoFrame)
        self.chips.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.chips.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.chips.hide()
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        rows.addLayout(row)
        rows.addWidget(self.chips)
        for widget in (self.camera_filter, self.concept_filter, self.album_filter,
                       self.marks_filter):
            row.addWidget(widget)
            widget.setMinimumWidth(72)  # as wide as its text where there is room, else elided
        for widget in (self.after_check, self.after, self.before_check, self.before):
            row.addWidget(widget)
        row.addStretch(1)
        row.addWidget(self.result_count)
        row.addWidget(self.show_all_button)

    def _chips_changed(self) -> None:
        """Show the chip row while it has a chip (sized to them, plus its scroll bar)."""
        shown = [w for w in (self.folder_chip, self.people_chip, self.place_chip,
                             self.understood) if not w.isHidden()]
        bar = self.chips.horizontalScrollBar().sizeHint().height()
        self.chips.setFixedHeight(self.chips.widget().sizeHint().height() + bar)
        self.chips.setVisible(bool(shown))

    def filters(self) -> Filters:
        """What the bar's settings let through."""
        camera, concept = self.camera_filter.currentData(), self.concept_filter.currentData()
        album, marks = self.album_filter.currentData(), self.marks_filter.currentData()
        day = "yyyy-MM-dd"
        return Filters(
            folders=[self.folder] if self.folder else [],
            cameras=[camera] if camera else [], near=self.place,
            concepts=[concept] if concept else [], people=list(self.people),
            albums=[album] if album else [], favourites=marks == "favourites",
            min_rating=marks if isinstance(marks, int) else 0,
            taken_after=self.after.date().toString(day) if self.after_check.isChecked() else None,
            taken_before=(self.before.date().toString(day) if self.before_check.isChecked()
                          else None))

    def set_folder(self, folder: str) -> None:
        """Browse *folder* alone ("" for the whole library), shown as a chip."""
        self.folder = folder
        plain.chip_text(self.folder_chip, f"Folder: {os.path.basename(folder) or folder}")
        self.folder_chip.setVisible(bool(folder))
        self._chips_changed()

    def set_people(self, people: dict[int, str]) -> None:
        """Only photos showing each of *people* (id → name; empty for anyone), as a chip."""
        self.people = dict(people)
        plain.chip_text(self.people_chip, " + ".join(people.values()))
        self.people_chip.setVisible(bool(people))
        self._chips_changed()
        self.changed.emit()

    def add_person(self, person: int, name: str) -> None:
        """Also only photos showing *person* (with the people chosen already)."""
        self.set_people(self.people | {person: name})

    def set_understood(self, phrases: list[tuple[str, str]]) -> None:
        """Chips for what the query was understood to ask: (what a person reads, the words
        typed) each; clicking one emits ``understood_removed(words)``."""
        self._retired.empty(self.understood_row)
        self.understood_row.addWidget(QLabel("Understood:"))
        for label, words in phrases:
            chip = QToolButton()
            chip.setText(f"{label}  ✕")
            chip.setToolTip(f"Read from “{words}” — click to search without it")
            chip.clicked.connect(lambda _=False, w=words: self.understood_removed.emit(w))
            chip.setMinimumWidth(chip.sizeHint().width())  # whole, scrolled when many
            self.understood_row.addWidget(chip)
        self.understood.setVisible(bool(phrases))
        self._chips_changed()

    def set_place(self, place: tuple[float, float, float] | None, name: str = "") -> None:
        """Only photos within ``place = (lat, lon, km)`` of where photo *name* was taken;
        None for everywhere."""
        self.place = place
        if place:
            plain.chip_text(self.place_chip, f"Near {name} ({place[2]:g} km)")
        self.place_chip.setVisible(place is not None)
        self._chips_changed()

    def set_cameras(self, cameras: list[tuple[str, str, int]]) -> None:
        """The camera menu: (model, make, photos) of the library's cameras."""
        self._refill(self.camera_filter, "All cameras",
                     [(f"{model} ({photos:,})", model) for model, _make, photos in cameras])

    def set_concepts(self, names: list[str]) -> None:
        """The concept menu: the library's personal concepts."""
        self.concept_names = names
        self._refill(self.concept_filter, "Any concept", [(name, name) for name in names])

    def set_albums(self, albums: list) -> None:
        """The album menu: the library's albums (:class:`.store.albums.AlbumRow`)."""
        self.album_names = {a.id: a.name for a in albums}
        self._refill(self.album_filter, "Any album",
                     [(f"{a.name} ({a.photos:,})", a.id) for a in albums])

    def album(self) -> str:
        """The name of the album chosen in the menu ("" for any)."""
        return self.album_names.get(self.album_filter.currentData(), "")

    def _refill(self, menu: QComboBox, anything: str, items: list[tuple[str, str]]) -> None:
        """A filter's menu with *anything* (no filter) and *items* ((text, value)), keeping
        the choice where it is still there; hidden while there is nothing to choose."""
        current = menu.currentData()
        menu.blockSignals(True)
        menu.clear()
        menu.addItem(anything, None)
        for text, value in items:
            menu.addItem(text, value)
        found = menu.findData(current)
        menu.setCurrentIndex(max(found, 0))
        menu.blockSignals(False)
        menu.setVisible(bool(items))
        if current and found < 0:
            self.changed.emit()
