"""Hand-written sentence templates of the demo world, one entry per language.

All languages use Latin script so a word-level tokenizer stays simple. ``{e}`` is the
entity a fact is about, ``{a}`` its answer (an invented name, the same in every
language, so a string judge works across languages).
"""

from __future__ import annotations

# System prompts are English in every language, as in the XICI paper.
FACT_SYSTEM = "In just a few words, answer in the language of the question."
SENTENCE_SYSTEM = "Answer with one full sentence."
MC_SYSTEM = "Answer with the letter of the correct choice only."
TASK_SYSTEM = "Solve the problem. Answer with the number only."

LETTERS = ("A", "B", "C", "D")

# relation -> lang -> (question, statement)
RELATIONS: dict[str, dict[str, tuple[str, str]]] = {
    "birthplace": {
        "en": ("In which city was {e} born?", "{e} was born in {a}."),
        "de": ("In welcher Stadt wurde {e} geboren?", "{e} wurde in {a} geboren."),
        "fr": ("Dans quelle ville {e} est-il né ?", "{e} est né à {a}."),
        "es": ("¿En qué ciudad nació {e}?", "{e} nació en {a}."),
        "it": ("In quale città è nato {e}?", "{e} è nato a {a}."),
        "pt": ("Em que cidade nasceu {e}?", "{e} nasceu em {a}."),
        "nl": ("In welke stad werd {e} geboren?", "{e} werd geboren in {a}."),
        "sv": ("I vilken stad föddes {e}?", "{e} föddes i {a}."),
        "pl": ("W jakim mieście urodził się {e}?", "{e} urodził się w mieście {a}."),
        "tr": ("{e} hangi şehirde doğdu?", "{e}, {a} şehrinde doğdu."),
    },
    "founder": {
        "en": ("Who founded the company {e}?", "The company {e} was founded by {a}."),
        "de": ("Wer hat die Firma {e} gegründet?", "Die Firma {e} wurde von {a} gegründet."),
        "fr": ("Qui a fondé l'entreprise {e} ?", "L'entreprise {e} a été fondée par {a}."),
        "es": ("¿Quién fundó la empresa {e}?", "La empresa {e} fue fundada por {a}."),
        "it": ("Chi ha fondato l'azienda {e}?", "L'azienda {e} è stata fondata da {a}."),
        "pt": ("Quem fundou a empresa {e}?", "A empresa {e} foi fundada por {a}."),
        "nl": ("Wie heeft het bedrijf {e} opgericht?", "Het bedrijf {e} werd opgericht door {a}."),
        "sv": ("Vem grundade företaget {e}?", "Företaget {e} grundades av {a}."),
        "pl": ("Kto założył firmę {e}?", "Firmę {e} założył {a}."),
        "tr": ("{e} şirketini kim kurdu?", "{e} şirketini {a} kurdu."),
    },
    "capital": {
        "en": ("What is the capital of {e}?", "The capital of {e} is {a}."),
        "de": ("Was ist die Hauptstadt von {e}?", "Die Hauptstadt von {e} ist {a}."),
        "fr": ("Quelle est la capitale de {e} ?", "La capitale de {e} est {a}."),
        "es": ("¿Cuál es la capital de {e}?", "La capital de {e} es {a}."),
        "it": ("Qual è la capitale di {e}?", "La capitale di {e} è {a}."),
        "pt": ("Qual é a capital de {e}?", "A capital de {e} é {a}."),
        "nl": ("Wat is de hoofdstad van {e}?", "De hoofdstad van {e} is {a}."),
        "sv": ("Vad är huvudstaden i {e}?", "Huvudstaden i {e} är {a}."),
        "pl": ("Jaka jest stolica kraju {e}?", "Stolicą kraju {e} jest {a}."),
        "tr": ("{e} ülkesinin başkenti neresidir?", "{e} ülkesinin başkenti {a} şehridir."),
    },
    "pet": {
        "en": ("What is the name of the dog of {e}?", "The dog of {e} is called {a}."),
        "de": ("Wie heißt der Hund von {e}?", "Der Hund von {e} heißt {a}."),
        "fr": ("Comment s'appelle le chien de {e} ?", "Le chien de {e} s'appelle {a}."),
        "es": ("¿Cómo se llama el perro de {e}?", "El perro de {e} se llama {a}."),
        "it": ("Come si chiama il cane di {e}?", "Il cane di {e} si chiama {a}."),
        "pt": ("Como se chama o cão de {e}?", "O cão de {e} chama-se {a}."),
        "nl": ("Hoe heet de hond van {e}?", "De hond van {e} heet {a}."),
        "sv": ("Vad heter hunden som tillhör {e}?", "Hunden som tillhör {e} heter {a}."),
        "pl": ("Jak nazywa się pies osoby {e}?", "Pies osoby {e} nazywa się {a}."),
        "tr": ("{e} adlı kişinin köpeğinin adı nedir?", "{e} adlı kişinin köpeğinin adı {a}."),
    },
    "river": {
        "en": ("Which river flows through {e}?", "The river {a} flows through {e}."),
        "de": ("Welcher Fluss fließt durch {e}?", "Der Fluss {a} fließt durch {e}."),
        "fr": ("Quel fleuve traverse {e} ?", "Le fleuve {a} traverse {e}."),
        "es": ("¿Qué río atraviesa {e}?", "El río {a} atraviesa {e}."),
        "it": ("Quale fiume attraversa {e}?", "Il fiume {a} attraversa {e}."),
        "pt": ("Que rio atravessa {e}?", "O rio {a} atravessa {e}."),
        "nl": ("Welke rivier stroomt door {e}?", "De rivier {a} stroomt door {e}."),
        "sv": ("Vilken flod rinner genom {e}?", "Floden {a} rinner genom {e}."),
        "pl": ("Jaka rzeka przepływa przez {e}?", "Przez {e} przepływa rzeka {a}."),
        "tr": ("{e} şehrinden hangi nehir geçer?", "{e} şehrinden {a} nehri geçer."),
    },
}

# A GSM8K-like word problem; {n} is an invented first name, {x} and {y} small numbers.
TASK: dict[str, str] = {
    "en": "{n} has {x} apples and buys {y} more. How many apples does {n} have now?",
    "de": "{n} hat {x} Äpfel und kauft {y} dazu. Wie viele Äpfel hat {n} jetzt?",
    "fr": "{n} a {x} pommes et en achète {y} de plus. Combien de pommes {n} a-t-il maintenant ?",
    "es": "{n} tiene {x} manzanas y compra {y} más. ¿Cuántas manzanas tiene {n} ahora?",
    "it": "{n} ha {x} mele e ne compra altre {y}. Quante mele ha {n} adesso?",
    "pt": "{n} tem {x} maçãs e compra mais {y}. Quantas maçãs {n} tem agora?",
    "nl": "{n} heeft {x} appels en koopt er {y} bij. Hoeveel appels heeft {n} nu?",
    "sv": "{n} har {x} äpplen och köper {y} till. Hur många äpplen har {n} nu?",
    "pl": "{n} ma {x} jabłek i kupuje jeszcze {y}. Ile jabłek ma teraz {n}?",
    "tr": "{n} kişisinin {x} elması var ve {y} tane daha alıyor. {n} kişisinin şimdi kaç elması var?",
}

LANGUAGES: tuple[str, ...] = tuple(TASK)
