"""The guide's built-in texts, written from the agreed process (PROCESS.md). Shown while the coordinator
has published no version yet, and the starting point of the first edit. Numbers are placeholders
(facts.py): they follow the settings."""

from __future__ import annotations

DEFAULT_NOTE = "Grundfassung nach der Kooperationsvereinbarung von Schulen und Jugendamt"

DEFAULT_TEXTS: dict[str, str] = {
    "ueberblick": """\
Schulen und Jugendamt haben in gemeinsamen Seminaren vereinbart, wie eine Sorge um ein Kind von der
Schule zum Allgemeinen Sozialen Dienst (ASD) kommt. Das Ziel: Sie wissen, wen Sie anrufen, Sie geben
alles Nötige auf einmal weiter, und Sie hören immer, wie es weitergeht.

Der Weg hat drei Stufen (§ 4 KKG):

1. **Hinschauen und sprechen.** Wenn Sie gewichtige Anhaltspunkte sehen, dass ein Kind gefährdet ist,
   sprechen Sie mit dem Kind und den Eltern und werben für Hilfe – außer, das würde das Kind gefährden.
   Informieren Sie Ihre Schulleitung.
2. **Beraten lassen.** Sind Sie unsicher, fragen Sie eine insoweit erfahrene Fachkraft (InsoFa).
   Die Beratung ist pseudonymisiert: ohne Namen, ohne Anschrift.
3. **Den ASD informieren.** Reicht das nicht aus, um die Gefahr abzuwenden, dürfen Sie dem ASD die
   nötigen Daten geben. Dafür ist die Mitteilung in diesem Programm da. Die Betroffenen erfahren
   vorher davon – vielleicht gegen ihren Willen, aber nicht ohne ihr Wissen.

Ist ein Kind **jetzt** in Gefahr, rufen Sie sofort an (siehe „In akuter Gefahr“).
""",
    "akut": """\
Dieses Programm ersetzt **keinen Anruf**. Ist ein Kind jetzt in Gefahr, rufen Sie sofort die
Bereitschaft des ASD an. Außerhalb der Bereitschaftszeiten und in Lebensgefahr rufen Sie die Polizei
unter 110.

Nach dem Anruf schreiben Sie die Mitteilung mit der Dringlichkeit **akut**. Dort geben Sie an, wann
Sie mit wem beim ASD telefoniert haben. Die schriftliche Mitteilung dokumentiert den Anruf.
""",
    "fachberatung": """\
Sie sind unsicher, ob Ihre Beobachtungen gewichtige Anhaltspunkte sind, oder was Sie als Nächstes tun
sollten? Dann fragen Sie eine insoweit erfahrene Fachkraft (InsoFa) des Jugendamts (§ 4 Abs. 2 KKG).

- Die Anfrage ist **pseudonymisiert**: nur Alter und Klassenstufe des Kindes, keine Namen, keine
  Geburtsdaten, keine Anschriften.
- Eine Fachkraft des Pools nimmt Ihre Anfrage innerhalb von {Frist Fachberatung} an und vereinbart
  mit Ihnen ein Gespräch.
- Am Ende steht eine Empfehlung: Die Schule unterstützt weiter selbst, oder Sie sprechen mit den
  Eltern und bieten Hilfe an, oder Sie informieren den ASD.

Aus einer beantworteten Fachberatung können Sie direkt eine Mitteilung an den ASD beginnen.
""",
    "kind": """\
Geben Sie Vor- und Nachnamen, Geburtsdatum, Klasse und Anschrift des Kindes an. Das Geschlecht ist
freiwillig. Geben Sie auch an, welche Sprache zu Hause gesprochen wird und ob beim Gespräch eine
Dolmetscherin oder ein Dolmetscher nötig ist.

Mit Name und Geburtsdatum erkennt der ASD, ob er das Kind schon kennt. Die Daten werden verschlüsselt
gespeichert.
""",
    "eltern": """\
Nennen Sie die Eltern oder andere Sorgeberechtigte mit Namen, Geburtsdatum, Telefon und Anschrift,
wenn sie anders ist als die des Kindes. Geben Sie an, ob es leibliche Eltern, Stief- oder
Pflegeeltern sind und ob sie sorgeberechtigt sind.

Nennen Sie auch andere Personen im Haushalt, soweit Sie sie kennen. Was Sie nicht wissen, lassen Sie
frei.
""",
    "beobachtungen": """\
Beschreiben Sie, was Sie gesehen oder gehört haben – möglichst genau und mit Datum:

- **Was** ist passiert oder aufgefallen?
- **Wer** hat es beobachtet, und woher stammt die Information?
- **Was hat das Kind gesagt?** Schreiben Sie seine Worte wörtlich auf, ohne sie zu deuten.

Wählen Sie die passenden Kategorien. Jede Kategorie hat einen kurzen Hilfetext mit Beispielen. Bei
Verletzungen markieren Sie auf der Körperskizze, wo sie sind.

Trennen Sie Beobachtungen von Vermutungen.
""",
    "bisher": """\
Der ASD muss wissen, was die Schule schon getan hat. Beantworten Sie jede Frage mit „ja“ und dem
Datum oder mit „nein, weil …“ und einem Grund:

- Gespräch mit den Eltern (und was dabei herauskam)
- Einbeziehung des Kindes
- Einbeziehung der Schulleitung
- Fachberatung durch eine InsoFa
- Kontakt zu anderen Fachleuten
- Angebot von Hilfe
""",
    "information": """\
Die Betroffenen sollen vorher wissen, dass die Schule den ASD informiert – vielleicht gegen ihren
Willen, aber nicht ohne ihr Wissen.

Geben Sie an, wann Sie sie informiert haben. Wenn nicht: Geben Sie den Grund an. Ein Grund ist zum
Beispiel, dass das Gespräch das Kind gefährden würde.
""",
    "dringlichkeit": """\
Schätzen Sie ein, wie eilig es ist:

- **akut**: Das Kind ist jetzt in Gefahr. Sie haben **vorher angerufen** und geben an, wann und mit
  wem. Der ASD bestätigt den Eingang innerhalb von {Frist Eingangsbestätigung akut}.
- **dringend**: Der ASD soll innerhalb weniger Tage handeln.
- **Klärung**: Es braucht Unterstützung, aber es gibt keine unmittelbare Gefahr.

Bei „dringend“ und „Klärung“ bestätigt der ASD den Eingang innerhalb von {Frist Eingangsbestätigung}.
""",
    "meldende-person": """\
Geben Sie an, wer die Mitteilung schreibt, in welcher Funktion, mit Telefonnummer und wann Sie gut zu
erreichen sind. So kann der ASD Sie bei Rückfragen schnell erreichen.

Die Funktion ist wichtig: Lehrkräfte, Schulsozialarbeit und Schulleitung bekommen eine Rückmeldung
des ASD (§ 4 Abs. 4 KKG). Mitarbeitende der offenen Ganztagsschule (OGS) haben diesen Anspruch
gesetzlich nicht.
""",
    "anhaenge": """\
Sie können Dateien anhängen, zum Beispiel ein Protokoll oder eine Stellungnahme: PDF, JPEG oder PNG,
jede höchstens {Größe Anhänge} groß. Bei Fotos werden die Metadaten entfernt.

Hängen Sie nur an, was der ASD für seine Einschätzung braucht.
""",
    "nach-dem-absenden": """\
Nach dem Absenden geht die Mitteilung an den ASD des Bezirks Ihrer Schule. Ihre Schulleitung wird
informiert. Dann geht es so weiter:

1. Der ASD **bestätigt den Eingang**: bei „akut“ innerhalb von {Frist Eingangsbestätigung akut},
   sonst innerhalb von {Frist Eingangsbestätigung}. Sie werden benachrichtigt.
2. Eine Fachkraft des ASD **übernimmt** die Mitteilung und prüft sie.
3. Hat der ASD **Rückfragen**, bekommen Sie eine Nachricht und antworten in diesem Programm.
4. Fällt Ihnen später noch etwas ein, schreiben Sie einen **Nachtrag**.
5. Sie bekommen eine **Rückmeldung** (siehe unten).

Wohnen die Eltern in einem anderen Bezirk, gibt der ASD die Mitteilung an den zuständigen Bezirk ab.
Sie erfahren, wohin.

Das Programm ist ein sicherer Übermittlungsweg, kein Archiv: {Löschfrist} nach dem Abschluss werden
Namen und Texte gelöscht. Bewahren Sie Ihre eigene Kopie (PDF) nach den Regeln Ihrer Schule auf.
""",
    "rueckmeldung": """\
Der ASD gibt Ihnen innerhalb von {Frist Rückmeldung} nach Eingang eine Rückmeldung (§ 4 Abs. 4
KKG). Sie erfahren genau drei Dinge:

- ob der ASD die gewichtigen Anhaltspunkte bestätigt sieht,
- ob der ASD tätig geworden ist,
- ob er noch tätig ist.

Dazu nennt er Ihnen eine Ansprechperson. Mehr darf der ASD nicht mitteilen: keine Maßnahmen und
keine Einzelheiten über die Familie.
""",
    "asd-eingang": """\
Neue Mitteilungen erscheinen im Eingang des Bezirks. Bestätigen Sie den Eingang rasch: bei „akut“
innerhalb von {Frist Eingangsbestätigung akut}, sonst innerhalb von {Frist Eingangsbestätigung}.
Die Schule wird dann benachrichtigt.

Überfällige Mitteilungen sind in jeder Liste markiert; die Teamleitung wird per E-Mail erinnert.

Ist ein anderer Bezirk zuständig (Wohnort der Eltern, § 86 SGB VIII), geben Sie die Mitteilung mit
Begründung dorthin ab.
""",
    "asd-einschaetzung": """\
Eine Fachkraft übernimmt die Mitteilung, oder die Teamleitung weist sie zu. Fehlt etwas, stellen Sie
der Schule eine Rückfrage in diesem Programm.

Die Gefährdungseinschätzung (§ 8a SGB VIII) treffen mehrere Fachkräfte gemeinsam. Halten Sie das
Ergebnis in den vier Kategorien der Statistik fest, dazu die beteiligten Fachkräfte, ob die Schule
einbezogen war, und die Maßnahmen. Die Einschätzung bleibt im ASD: Die Schule sieht sie nie.
""",
    "asd-rueckmeldung": """\
Die Schule bekommt innerhalb von {Frist Rückmeldung} nach Eingang eine Rückmeldung. Sie enthält nur:

- Anhaltspunkte bestätigt: ja oder nein
- ASD tätig geworden: ja oder nein
- ASD noch tätig: ja oder nein
- die Ansprechperson des ASD für die Schule

Keine Maßnahmen, keine Angaben zur Familie (§ 64 Abs. 4 SGB VIII). Halten Sie fest, ob die
Betroffenen vorher über die Rückmeldung informiert wurden, oder warum nicht.

Danach schließen Sie den Fall ab. {Löschfrist} später löscht das Programm Namen und Texte; exportieren
Sie die Mitteilung vorher als PDF in Ihre Fallsoftware.
""",
}
