"""FACS facts the Action Unit loader relies on: the intensity scale, AU names, and each AU's name and muscles.

Sources: Ekman, Friesen & Hager (2002), *Facial Action Coding System: The Manual* (the A-E intensity scale and
the AU table); the same table in iMotions (2016), *Facial Action Coding System (FACS) – A Visual Guidebook* (the
guide the course handout cites). OpenFace 2.0's ``AUxx_r`` columns (Baltrušaitis et al. 2018) and DISFA's label
files (Mavadati et al. 2013) write the A-E scale as the numbers 1-5, 0 meaning absent.
"""

from __future__ import annotations

#: The top of the intensity scale: FACS intensities A (trace) … E (maximum) written as 1 … 5, 0 = absent.
MAX_INTENSITY = 5.0

#: FACS names and muscular basis of the Action Units the kit's sources code. Sources: Ekman, Friesen & Hager
#: (2002), *Facial Action Coding System: The Manual*; the same table in iMotions (2016), *Facial Action Coding
#: System (FACS) – A Visual Guidebook* (the guide the course handout cites).
AU_FACTS: dict[str, tuple[str, str]] = {
    "AU1": ("inner brow raiser", "frontalis, pars medialis"),
    "AU2": ("outer brow raiser", "frontalis, pars lateralis"),
    "AU4": ("brow lowerer", "depressor glabellae, depressor supercilii, corrugator supercilii"),
    "AU5": ("upper lid raiser", "levator palpebrae superioris"),
    "AU6": ("cheek raiser", "orbicularis oculi, pars orbitalis"),
    "AU7": ("lid tightener", "orbicularis oculi, pars palpebralis"),
    "AU9": ("nose wrinkler", "levator labii superioris alaeque nasi"),
    "AU10": ("upper lip raiser", "levator labii superioris"),
    "AU12": ("lip corner puller", "zygomaticus major"),
    "AU14": ("dimpler", "buccinator"),
    "AU15": ("lip corner depressor", "depressor anguli oris (triangularis)"),
    "AU16": ("lower lip depressor", "depressor labii inferioris"),
    "AU17": ("chin raiser", "mentalis"),
    "AU20": ("lip stretcher", "risorius with platysma"),
    "AU23": ("lip tightener", "orbicularis oris"),
    "AU25": ("lips part", "depressor labii inferioris, or relaxation of mentalis or orbicularis oris"),
    "AU26": ("jaw drop", "masseter relaxed; temporalis and internal pterygoid relaxed"),
    "AU28": ("lip suck", "orbicularis oris"),
    "AU45": ("blink", "relaxation of levator palpebrae superioris; orbicularis oculi, pars palpebralis"),
}


def au_name(number: int | str) -> str:
    """``"AU12"`` from ``12``, ``"12"``, ``"AU12"`` or ``"AU012"``.

    Raises:
        ValueError: the text after ``AU`` is not a whole number.
    """
    text = str(number).upper().removeprefix("AU")
    return f"AU{int(text)}"
