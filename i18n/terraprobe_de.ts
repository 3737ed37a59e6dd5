<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de">
  <context>
    <name>AccuracyTable</name>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="112" />
      <source>Class</source>
      <translation>Klasse</translation>
    </message>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="93" />
      <source>Per-class figures of the last Classify run: sample patches, accuracy and F1 (a class's polygons: its tooltip). Trust the spatially blocked accuracy: leave-one-polygon-out (LOPO) flatters classes whose polygons share context. Raw: the blocked accuracy of a classifier on the raw band statistics alone. Red: under 50 %, mostly wrong on the map</source>
      <translation>Zahlen je Klasse des letzten Klassifizierens: Beispiel-Patches, Genauigkeit und F1 (die Polygone einer Klasse: ihr Tooltip). Verlässlich ist die räumlich geblockte Genauigkeit: Leave-one-polygon-out (LOPO) schönt Klassen, deren Polygone Kontext teilen. Roh: die geblockte Genauigkeit eines Klassifikators nur auf den Statistiken der Rohbänder. Rot: unter 50 %, auf der Karte meist falsch</translation>
    </message>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="154" />
      <source>held-out accuracy {accuracy} (pixels it did not train on: trust this one)</source>
      <translation>Genauigkeit auf zurückgehaltenen Pixeln {accuracy} (nicht trainiert: diese ist verlässlich)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="157" />
      <source>no held-out accuracy: check the map, or run Classify for a cross-validated one</source>
      <translation>keine Genauigkeit auf zurückgehaltenen Pixeln: prüfen Sie die Karte oder nutzen Sie Klassifizieren für eine kreuzvalidierte</translation>
    </message>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="149" />
      <source>training accuracy {accuracy} (on the very pixels it learned from: it shows the head fits the samples, not that the map is right)</source>
      <translation>Trainingsgenauigkeit {accuracy} (auf genau den Pixeln, aus denen gelernt wurde: sie zeigt, dass der Kopf zu den Beispielen passt, nicht, dass die Karte stimmt)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/accuracy_table.py" line="117" />
      <source>{name}: {n} sample polygon(s)</source>
      <translation>{name}: {n} Beispielpolygon(e)</translation>
    </message>
    <message>
      <source>Per-class figures of the last Classify run: sample patches and polygons, and accuracy. Trust the spatially blocked accuracy: leave-one-polygon-out (LOPO) flatters classes whose polygons share context. Red: under 50 %, mostly wrong on the map</source>
      <translation type="obsolete">Zahlen je Klasse des letzten Klassifizierens: Beispiel-Patches und -Polygone sowie Genauigkeit. Verlässlich ist die räumlich geblockte Genauigkeit: Leave-one-polygon-out (LOPO) schönt Klassen, deren Polygone Kontext teilen. Rot: unter 50 %, auf der Karte meist falsch</translation>
    </message>
  </context>
  <context>
    <name>ActionPanels</name>
    <message>
      <location filename="../backend/contract/commands.py" line="443" />
      <source>Auto (never below the raw bands)</source>
      <translation>Auto (nie schlechter als die Rohbänder)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="239" />
      <source>Batch size</source>
      <translation>Stapelgröße</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="418" />
      <source>Change types (clusters of change vectors; 0: off)</source>
      <translation>Veränderungsarten (Cluster der Veränderungsvektoren; 0: aus)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="441" />
      <source>Classifier</source>
      <translation>Klassifikator</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="223" />
      <source>Device</source>
      <translation>Gerät</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="274" />
      <source>Distance</source>
      <translation>Abstand</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="444" />
      <source>Gradient boosting</source>
      <translation>Gradient Boosting</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="419" />
      <source>Group the changed patches into this many change types ("from–to"; --change-clusters; off: none)</source>
      <translation>Die veränderten Patches in so viele Veränderungsarten gruppieren („von–nach“; --change-clusters; aus: keine)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="475" />
      <source>HDBSCAN (no k, noise class)</source>
      <translation>HDBSCAN (kein k, Rauschklasse)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>How embedding vectors are compared (--distance)</source>
      <translation>Wie Embedding-Vektoren verglichen werden (--distance)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>How embedding vectors are read (--normalise)</source>
      <translation>Wie Embedding-Vektoren gelesen werden (--normalise)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="474" />
      <source>How patches are grouped (--method)</source>
      <translation>Wie Patches gruppiert werden (--method)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="441" />
      <source>How the label map is learnt (--classifier)</source>
      <translation>Wie die Klassenkarte gelernt wird (--classifier)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="271" />
      <source>L2 (unit length)</source>
      <translation>L2 (Einheitslänge)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="474" />
      <source>Method</source>
      <translation>Methode</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="454" />
      <source>Neighbours (k of kNN)</source>
      <translation>Nachbarn (k des kNN)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>Normalise vectors</source>
      <translation>Vektoren normalisieren</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="479" />
      <source>Number of clusters (k)</source>
      <translation>Anzahl der Cluster (k)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="444" />
      <source>Random forest</source>
      <translation>Random Forest</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="482" />
      <source>Random seed</source>
      <translation>Zufallsstartwert</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="482" />
      <source>Seed of the initial centres and the HDBSCAN sample (--seed)</source>
      <translation>Startwert der Anfangszentren und der HDBSCAN-Stichprobe (--seed)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="234" />
      <source>Tile overlap</source>
      <translation>Kachelüberlappung</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="235" />
      <source>Tile overlap of the encoder in pixels (multiple of 8; --overlap)</source>
      <translation>Kachelüberlappung des Encoders in Pixeln (Vielfaches von 8; --overlap)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="220" />
      <source>Tile size of the encoder in pixels (--window)</source>
      <translation>Kachelgröße des Encoders in Pixeln (--window)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="239" />
      <source>Tiles per encoder call (--batch-size); lower it when memory is short</source>
      <translation>Kacheln je Encoder-Aufruf (--batch-size); bei knappem Speicher verringern</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="729" />
      <source>Training steps (Segment)</source>
      <translation>Trainingsschritte (Segmentieren)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="729" />
      <source>Training steps of the segmentation head (AdamW; --steps)</source>
      <translation>Trainingsschritte des Segmentierungskopfs (AdamW; --steps)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="223" />
      <source>Where the encoder runs (--device)</source>
      <translation>Wo der Encoder läuft (--device)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="219" />
      <source>Window size (pixels, multiple of 8)</source>
      <translation>Fenstergröße (Pixel, Vielfaches von 8)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="271" />
      <source>as they are</source>
      <translation>unverändert</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="36" />
      <source>auto</source>
      <translation>auto</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="43" />
      <source>cosine</source>
      <translation>Kosinus</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="43" />
      <source>euclidean</source>
      <translation>euklidisch</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="479" />
      <source>k of k-means (--k)</source>
      <translation>k von k-Means (--k)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="454" />
      <source>k of the kNN vote of Classify (--neighbors)</source>
      <translation>k der kNN-Abstimmung beim Klassifizieren (--neighbors)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="334" />
      <source>k-means</source>
      <translation>k-Means</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="443" />
      <source>kNN</source>
      <translation>kNN</translation>
    </message>
  </context>
  <context>
    <name>ActionsBox</name>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="123" />
      <source>+ band statistics</source>
      <translation>+ Bandstatistik</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="82" />
      <source>Actions</source>
      <translation>Aktionen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="123" />
      <source>Add each patch's band mean and std of the optical layer to the embeddings (--band-stats; needs the optical layer)</source>
      <translation>Mittelwert und Standardabweichung der Bänder des optischen Layers je Patch zu den Embeddings hinzufügen (--band-stats; braucht den optischen Layer)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="118" />
      <source>Class field</source>
      <translation>Klassenfeld</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="126" />
      <source>Classifier</source>
      <translation>Klassifikator</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="128" />
      <source>Classify</source>
      <translation>Klassifizieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="87" />
      <source>Click a point on the map to find similar places</source>
      <translation>Klicken Sie auf einen Punkt der Karte, um ähnliche Orte zu finden</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="99" />
      <source>Cluster</source>
      <translation>Clustern</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="99" />
      <source>Clusters of the embeddings (k-means or HDBSCAN)</source>
      <translation>Cluster der Embeddings (k-means oder HDBSCAN)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="84" />
      <source>Compute embeddings and an RGB preview (first 3 principal components)</source>
      <translation>Embeddings und eine RGB-Vorschau berechnen (erste 3 Hauptkomponenten)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="113" />
      <source>Create a sample polygon layer (GeoPackage, field 'class') and start digitising</source>
      <translation>Einen Beispielpolygon-Layer anlegen (GeoPackage, Feld 'class') und mit dem Digitalisieren beginnen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="84" />
      <source>Embed</source>
      <translation>Einbetten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="97" />
      <source>HDBSCAN's smallest cluster, in sampled patches (auto: 1 % of the sample; --min-cluster-size)</source>
      <translation>Kleinster Cluster von HDBSCAN in Stichproben-Patches (auto: 1 % der Stichprobe; --min-cluster-size)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="128" />
      <source>Label every pixel with the nearest samples' class</source>
      <translation>Jedes Pixel mit der Klasse der nächsten Beispiele beschriften</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="113" />
      <source>New…</source>
      <translation>Neu…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="95" />
      <source>Number of clusters</source>
      <translation>Anzahl der Cluster</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="108" />
      <source>Sample polygons with a class field</source>
      <translation>Beispielpolygone mit einem Klassenfeld</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="115" />
      <source>Samples</source>
      <translation>Beispiele</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="130" />
      <source>Segment</source>
      <translation>Segmentieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="87" />
      <source>Similarity…</source>
      <translation>Ähnlichkeit…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="112" />
      <source>The field holding each polygon's class (not an identifier)</source>
      <translation>Das Feld mit der Klasse jedes Polygons (keine Kennung)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="130" />
      <source>Train a small segmentation head on the samples and apply it</source>
      <translation>Einen kleinen Segmentierungskopf auf den Beispielen trainieren und anwenden</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="94" />
      <source>k = </source>
      <translation>k = </translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="90" />
      <source>k-means: k clusters; HDBSCAN: density clusters, no k, unclustered patches in a grey noise class</source>
      <translation>k-Means: k Cluster; HDBSCAN: Dichte-Cluster, kein k, nicht zugeordnete Patches in einer grauen Rauschklasse</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="120" />
      <source>kNN vote in embedding space, or a random forest / gradient boosting on the embeddings (--classifier)</source>
      <translation>kNN-Abstimmung im Embedding-Raum oder ein Random Forest / Gradient Boosting auf den Embeddings (--classifier)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="97" />
      <source>min size </source>
      <translation>Mindestgröße </translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="96" />
      <source>min size: auto</source>
      <translation>Mindestgröße: auto</translation>
    </message>
  </context>
  <context>
    <name>AdvancedBox</name>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="170" />
      <source> px</source>
      <translation> px</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="163" />
      <source>Advanced</source>
      <translation>Erweitert</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="183" />
      <source>Distance</source>
      <translation>Abstand</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="180" />
      <source>How Classify's kNN, Similarity and Change compare vectors (--distance): cosine (angle) or euclidean (straight-line, after the Vectors choice)</source>
      <translation>Wie kNN beim Klassifizieren, Ähnlichkeit und Veränderung Vektoren vergleichen (--distance): Kosinus (Winkel) oder euklidisch (Luftlinie, nach der Wahl unter Vektoren)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="175" />
      <source>How Classify, Similarity and Change read the embedding vectors (--normalise): auto scales Embed's and unit-length fields to length 1, L2 scales every vector to length 1, as they are keeps their lengths (magnitudes then count)</source>
      <translation>Wie Klassifizieren, Ähnlichkeit und Veränderung die Embedding-Vektoren lesen (--normalise): auto bringt Felder aus Einbetten und solche mit Einheitslänge auf Länge 1, L2 jeden Vektor auf Länge 1, unverändert behält ihre Längen (die Beträge zählen dann mit)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="179" />
      <source>Vectors</source>
      <translation>Vektoren</translation>
    </message>
  </context>
  <context>
    <name>AreaBox</name>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="55" />
      <source> px</source>
      <translation> px</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="53" />
      <source>Area</source>
      <translation>Gebiet</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="47" />
      <source>Area and processing</source>
      <translation>Gebiet und Verarbeitung</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="71" />
      <source>Beside the project (terraprobe/)</source>
      <translation>Neben dem Projekt (terraprobe/)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="70" />
      <source>Choose a folder…</source>
      <translation>Ordner wählen…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="61" />
      <source>Device</source>
      <translation>Gerät</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="52" />
      <source>Drag a rectangle on the map</source>
      <translation>Ziehen Sie ein Rechteck auf der Karte auf</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="51" />
      <source>Draw</source>
      <translation>Zeichnen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="49" />
      <source>Drawn rectangle</source>
      <translation>Gezeichnetes Rechteck</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="67" />
      <source>Folder…</source>
      <translation>Ordner…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="49" />
      <source>Layer extent</source>
      <translation>Layerausdehnung</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="49" />
      <source>Map canvas extent</source>
      <translation>Ausdehnung der Kartenansicht</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="62" />
      <source>Off: each run adds new layers named by what made them (model, classifier, k, date), beside the earlier ones. On: a run replaces the earlier result of the same action on the same layer</source>
      <translation>Aus: jeder Lauf fügt neue Layer hinzu, benannt nach ihrer Herkunft (Modell, Klassifikator, k, Datum), neben den früheren. An: ein Lauf ersetzt das frühere Ergebnis derselben Aktion auf demselben Layer</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="62" />
      <source>Replace previous result</source>
      <translation>Vorheriges Ergebnis ersetzen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="65" />
      <source>Results</source>
      <translation>Ergebnisse</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="73" />
      <source>Saved in</source>
      <translation>Gespeichert in</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="68" />
      <source>Where results and new sample layers are saved</source>
      <translation>Wo Ergebnisse und neue Beispiel-Layer gespeichert werden</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="57" />
      <source>Window</source>
      <translation>Fenster</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="56" />
      <source>Window the encoder sees at once (multiple of 8)</source>
      <translation>Fenster, das der Encoder auf einmal sieht (Vielfaches von 8)</translation>
    </message>
  </context>
  <context>
    <name>ChangeBox</name>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="50" />
      <source>After</source>
      <translation>Nachher</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="49" />
      <source>Before</source>
      <translation>Vorher</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="40" />
      <source>Change between dates</source>
      <translation>Veränderung zwischen Zeitpunkten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="61" />
      <source>Change magnitude, change mask and (optionally) change types between the two dates</source>
      <translation>Veränderungsstärke, Veränderungsmaske und (optional) Veränderungsarten zwischen den beiden Zeitpunkten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="60" />
      <source>Change types</source>
      <translation>Veränderungsarten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="45" />
      <source>Compare</source>
      <translation>Vergleichen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="42" />
      <source>Compare two embedding fields (AlphaEarth, TESSERA, Embed's), or two layers of two dates embedded with the Inputs' model (S2 alone, or S1 alone for all-weather flood mapping)</source>
      <translation>Zwei Embedding-Felder vergleichen (AlphaEarth, TESSERA, aus Einbetten) oder zwei Layer zweier Zeitpunkte, eingebettet mit dem Modell der Eingaben (nur S2, oder nur S1 für wetterunabhängige Hochwasserkartierung)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="61" />
      <source>Detect change</source>
      <translation>Veränderung erkennen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="54" />
      <source>Fixed threshold on the change magnitude (cosine distance)</source>
      <translation>Fester Schwellenwert auf der Veränderungsstärke (Kosinusabstand)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="57" />
      <source>Group the changed patches into this many change types ("from–to"; --change-clusters; off: none)</source>
      <translation>Die veränderten Patches in so viele Veränderungsarten gruppieren („von–nach“; --change-clusters; aus: keine)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="46" />
      <source>The earlier date</source>
      <translation>Der frühere Zeitpunkt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="47" />
      <source>The later date (another grid is aligned on the fly)</source>
      <translation>Der spätere Zeitpunkt (ein anderes Raster wird direkt angeglichen)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="55" />
      <source>Threshold</source>
      <translation>Schwellenwert</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="51" />
      <source>Where the change magnitude becomes change (--threshold)</source>
      <translation>Ab welcher Veränderungsstärke eine Veränderung vorliegt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="57" />
      <source>off</source>
      <translation>aus</translation>
    </message>
  </context>
  <context>
    <name>ClassListDialog</name>
    <message>
      <location filename="../plugin/ui/class_list_dialog.py" line="17" />
      <source>New sample layer — classes</source>
      <translation>Neuer Beispiel-Layer – Klassen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/class_list_dialog.py" line="19" />
      <source>The classes you will draw, one a line (or separated by commas). Each gets its own colour; Classify and Segment need at least two.</source>
      <translation>Die Klassen, die Sie zeichnen werden, eine je Zeile (oder durch Kommas getrennt). Jede erhält eine eigene Farbe; Klassifizieren und Segmentieren brauchen mindestens zwei.</translation>
    </message>
  </context>
  <context>
    <name>InputsPanel</name>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="94" />
      <source>Add a model file (Terraprobe .safetensors + .json, or an imported CROMA checkpoint)</source>
      <translation>Eine Modelldatei hinzufügen (Terraprobe .safetensors + .json oder ein importierter CROMA-Checkpoint)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="94" />
      <source>Add…</source>
      <translation>Hinzufügen…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="96" />
      <source>Download CROMA base/large (verified, kept across plugin upgrades) or see the bundled models</source>
      <translation>CROMA base/large herunterladen (geprüft, bleibt bei Plugin-Aktualisierungen erhalten) oder die mitgelieferten Modelle ansehen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="64" />
      <source>Embedding field</source>
      <translation>Embedding-Feld</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="91" />
      <source>Encoder: the bundled default, or a model file you added</source>
      <translation>Encoder: das mitgelieferte Standardmodell oder eine hinzugefügte Modelldatei</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="96" />
      <source>Get models…</source>
      <translation>Modelle holen…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="51" />
      <source>Inputs</source>
      <translation>Eingaben</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="82" />
      <source>Layer band</source>
      <translation>Layerband</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="254" />
      <source>Map the bands by hand: {error}</source>
      <translation>Ordnen Sie die Bänder von Hand zu: {error}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="77" />
      <source>Model</source>
      <translation>Modell</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="82" />
      <source>Model band</source>
      <translation>Modellband</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="187" />
      <source>No layer band: the backend interpolates this band from the neighbouring wavelengths (an approximation)</source>
      <translation>Kein Layerband: das Backend interpoliert dieses Band aus benachbarten Wellenlängen (eine Näherung)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="56" />
      <source>Optical</source>
      <translation>Optisch</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="54" />
      <source>Optical layer (Sentinel-2 or any layer whose bands the model knows)</source>
      <translation>Optischer Layer (Sentinel-2 oder ein Layer, dessen Bänder das Modell kennt)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="73" />
      <source>Optical units</source>
      <translation>Optische Einheiten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="60" />
      <source>Optional embedding field: a raster made by Embed, or any multi-band float raster such as an AlphaEarth or TESSERA export. When set, Cluster, Classify, Segment and Similarity run on it instead of the encoder</source>
      <translation>Optionales Embedding-Feld: ein Raster aus Einbetten oder ein beliebiges mehrkanaliges Gleitkomma-Raster wie ein AlphaEarth- oder TESSERA-Export. Wenn gesetzt, laufen Clustern, Klassifizieren, Segmentieren und Ähnlichkeit darauf statt auf dem Encoder</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="57" />
      <source>Optional radar layer (Sentinel-1 VV/VH), aligned onto the optical grid</source>
      <translation>Optionaler Radar-Layer (Sentinel-1 VV/VH), auf das optische Raster angeglichen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="59" />
      <source>Radar</source>
      <translation>Radar</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="76" />
      <source>Radar units</source>
      <translation>Radar-Einheiten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="251" />
      <source>Read as {sensor} (recognised from the layer).</source>
      <translation>Gelesen als {sensor} (am Layer erkannt).</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="246" />
      <source>Read as {sensor} (your choice).</source>
      <translation>Gelesen als {sensor} (Ihre Wahl).</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="248" />
      <source>Read as {sensor}: order assumed (no band names); check the table.</source>
      <translation>Gelesen als {sensor}: Reihenfolge angenommen (keine Bandnamen); prüfen Sie die Tabelle.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="70" />
      <source>Sensor</source>
      <translation>Sensor</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="256" />
      <source>Spectrally filled (approximation): {bands}.</source>
      <translation>Spektral gefüllt (Näherung): {bands}.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="235" />
      <source>Spectrally filled from neighbouring wavelengths (approximation)</source>
      <translation>Spektral aus benachbarten Wellenlängen gefüllt (Näherung)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="71" />
      <source>Units of the optical values; auto detects them from the data type, metadata and values</source>
      <translation>Einheiten der optischen Werte; auto erkennt sie aus Datentyp, Metadaten und Werten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="74" />
      <source>Units of the radar values (the model expects dB); auto detects them</source>
      <translation>Einheiten der Radarwerte (das Modell erwartet dB); auto erkennt sie</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="80" />
      <source>Which layer band feeds each model band (matched from band names; editable)</source>
      <translation>Welches Layerband jedes Modellband speist (nach Bandnamen zugeordnet; änderbar)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="65" />
      <source>Which sensor the optical layer comes from. Auto recognises it from the band names; other sensors than Sentinel-2 are matched to the model's bands by wavelength</source>
      <translation>Von welchem Sensor der optische Layer stammt. Auto erkennt ihn an den Bandnamen; andere Sensoren als Sentinel-2 werden den Bändern des Modells nach Wellenlänge zugeordnet</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="179" />
      <source>{band} (radar)</source>
      <translation>{band} (Radar)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="185" />
      <source>— none —</source>
      <translation>— keines —</translation>
    </message>
    <message>
      <location filename="../plugin/ui/inputs_panel.py" line="185" />
      <source>— spectral fill —</source>
      <translation>— spektral gefüllt —</translation>
    </message>
  </context>
  <context>
    <name>ModelPicker</name>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="129" />
      <source>Add a model</source>
      <translation>Ein Modell hinzufügen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="72" />
      <source>Auto (by sensor)</source>
      <translation>Auto (nach Sensor)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="168" />
      <source>Auto → {name} (no bundled {sensor} model)</source>
      <translation>Auto → {name} (kein mitgeliefertes {sensor}-Modell)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="166" />
      <source>Auto → {summary}</source>
      <translation>Auto → {summary}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="164" />
      <source>CROMA bands: Sentinel-2 (12, no B10) and Sentinel-1 VV/VH</source>
      <translation>CROMA-Bänder: Sentinel-2 (12, ohne B10) und Sentinel-1 VV/VH</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="149" />
      <source>Importing {name} (this converts the checkpoint once)…</source>
      <translation>{name} wird importiert (der Checkpoint wird einmal umgewandelt)…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="130" />
      <source>Models (*.safetensors *.json *.pt *.pth);;All files (*)</source>
      <translation>Modelle (*.safetensors *.json *.pt *.pth);;Alle Dateien (*)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="143" />
      <source>Terraprobe: import {name}</source>
      <translation>Terraprobe: {name} importieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="112" />
      <source>Terraprobe: read {name}</source>
      <translation>Terraprobe: {name} lesen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="73" />
      <source>The backend picks the bundled default (galileo-nano: any sensor, no spectral fill), else the model trained for the optical layer's sensor, else the Sentinel-2 model with spectral fill</source>
      <translation>Das Backend wählt das mitgelieferte Standardmodell (galileo-nano: jeder Sensor, ohne spektrales Auffüllen), sonst das für den Sensor des optischen Layers trainierte Modell, sonst das Sentinel-2-Modell mit spektralem Auffüllen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="147" />
      <source>could not import {name}: {error}</source>
      <translation>{name} konnte nicht importiert werden: {error}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="77" />
      <source>{name} (bundled)</source>
      <translation>{name} (mitgeliefert)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="106" />
      <source>{name}: reading the checkpoint…</source>
      <translation>{name}: der Checkpoint wird gelesen…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/model_picker.py" line="122" />
      <source>{name}: {error}</source>
      <translation>{name}: {error}</translation>
    </message>
  </context>
  <context>
    <name>ProgressBox</name>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="206" />
      <source>Cancel</source>
      <translation>Abbrechen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="209" />
      <source>Ready.</source>
      <translation>Bereit.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/action_panels.py" line="207" />
      <source>Stop the running action (nothing is added)</source>
      <translation>Die laufende Aktion anhalten (nichts wird hinzugefügt)</translation>
    </message>
  </context>
  <context>
    <name>Terraprobe</name>
    <message>
      <location filename="../plugin/requests_builder.py" line="164" />
      <source>Band mapping must list band numbers, e.g. 1,2,3 (got {text})</source>
      <translation>Die Bandzuordnung muss Bandnummern auflisten, z. B. 1,2,3 (erhalten: {text})</translation>
    </message>
    <message>
      <location filename="../plugin/readiness.py" line="22" />
      <source>Map a layer band to: {bands}</source>
      <translation>Ordnen Sie ein Layerband zu: {bands}</translation>
    </message>
    <message>
      <location filename="../plugin/readiness.py" line="24" />
      <source>Map a radar layer band to: {bands}</source>
      <translation>Ordnen Sie ein Radar-Layerband zu: {bands}</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="200" />
      <source>QGIS cannot open the result {path}</source>
      <translation>QGIS kann das Ergebnis {path} nicht öffnen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/map_tools.py" line="79" />
      <source>Similarity query point</source>
      <translation>Abfragepunkt der Ähnlichkeit</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="105" />
      <source>Terraprobe samples</source>
      <translation>Terraprobe-Beispiele</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="140" />
      <source>Terraprobe {action}: {layer}</source>
      <translation>Terraprobe {action}: {layer}</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="198" />
      <source>Warnings before the failure:</source>
      <translation>Warnungen vor dem Fehler:</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="128" />
      <source>a Terraprobe run is already in progress</source>
      <translation>eine Terraprobe-Berechnung läuft bereits</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="38" />
      <source>a class map has one band; {name} has {count}: choose a class, cluster, segmentation or change layer</source>
      <translation>eine Klassenkarte hat ein Band; {name} hat {count}: wählen Sie einen Klassen-, Cluster-, Segmentierungs- oder Veränderungs-Layer</translation>
    </message>
    <message>
      <location filename="../plugin/result_names.py" line="41" />
      <source>band statistics</source>
      <translation>Bandstatistik</translation>
    </message>
    <message>
      <location filename="../plugin/requests_builder.py" line="137" />
      <source>bands to be spectrally filled can only be the sensor's own choice: map a layer band to {bands}, or pick the sensor again to restore its matching</source>
      <translation>spektral aufzufüllende Bänder kann nur der Sensor selbst bestimmen: ordnen Sie {bands} ein Layer-Band zu oder wählen Sie den Sensor erneut, um seine Zuordnung wiederherzustellen</translation>
    </message>
    <message>
      <location filename="../plugin/rasters.py" line="85" />
      <source>cancelled before the export</source>
      <translation>vor dem Export abgebrochen</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="103" />
      <source>cannot create {path}: {error}</source>
      <translation>{path} kann nicht angelegt werden: {error}</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="107" />
      <source>cannot open the new sample layer {path}</source>
      <translation>der neue Beispiel-Layer {path} kann nicht geöffnet werden</translation>
    </message>
    <message>
      <location filename="../plugin/rasters.py" line="89" />
      <source>cannot read the raster layer's data provider</source>
      <translation>der Datenanbieter des Rasterlayers kann nicht gelesen werden</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="177" />
      <source>cannot write samples to {path}: {error}</source>
      <translation>Beispiele können nicht nach {path} geschrieben werden: {error}</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="44" />
      <source>change magnitude</source>
      <translation>Veränderungsstärke</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="45" />
      <source>change mask</source>
      <translation>Veränderungsmaske</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="46" />
      <source>change types</source>
      <translation>Veränderungsarten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="34" />
      <source>choose a class, cluster, segmentation or change layer to vectorise</source>
      <translation>wählen Sie einen Klassen-, Cluster-, Segmentierungs- oder Veränderungslayer zum Vektorisieren</translation>
    </message>
    <message>
      <location filename="../plugin/readiness.py" line="31" />
      <source>choose a sample polygon layer (or create one with New…)</source>
      <translation>wählen Sie einen Beispielpolygon-Layer (oder legen Sie mit Neu… einen an)</translation>
    </message>
    <message>
      <location filename="../plugin/readiness.py" line="20" />
      <source>choose an optical layer</source>
      <translation>wählen Sie einen optischen Layer</translation>
    </message>
    <message>
      <location filename="../plugin/requests_builder.py" line="190" />
      <source>choose an optical layer (or existing embeddings)</source>
      <translation>wählen Sie einen optischen Layer (oder vorhandene Embeddings)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="25" />
      <source>choose the before and after layers (Change between dates)</source>
      <translation>wählen Sie den Vorher- und den Nachher-Layer (Veränderung zwischen Zeitpunkten)</translation>
    </message>
    <message>
      <location filename="../plugin/requests_builder.py" line="240" />
      <source>choose the {date} layer</source>
      <translation>wählen Sie den Layer {date}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="115" />
      <source>class(es) with fewer samples than the {k} kNN neighbours: {classes}; they can be outvoted. Add samples, or lower Advanced › Neighbours</source>
      <translation>Klasse(n) mit weniger Beispielen als die {k} kNN-Nachbarn: {classes}; sie können überstimmt werden. Fügen Sie Beispiele hinzu oder verringern Sie Erweitert › Nachbarn</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="40" />
      <source>classes</source>
      <translation>Klassen</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="39" />
      <source>clusters</source>
      <translation>Cluster</translation>
    </message>
    <message>
      <location filename="../plugin/requests_builder.py" line="242" />
      <source>compare two embedding fields, or two rasters of the same kind</source>
      <translation>vergleichen Sie zwei Embedding-Felder oder zwei Raster derselben Art</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="41" />
      <source>confidence</source>
      <translation>Konfidenz</translation>
    </message>
    <message>
      <location filename="../plugin/rasters.py" line="96" />
      <source>could not write a temporary GeoTIFF of the layer ({status})</source>
      <translation>ein temporäres GeoTIFF des Layers konnte nicht geschrieben werden ({status})</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="38" />
      <source>embedding (PCA RGB)</source>
      <translation>Embedding (PCA-RGB)</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="37" />
      <source>embeddings</source>
      <translation>Embeddings</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="147" />
      <source>layer '{layer}' has no field '{field}'</source>
      <translation>Layer '{layer}' hat kein Feld '{field}'</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="162" />
      <source>layer '{layer}' has no polygons yet: draw some samples first</source>
      <translation>Layer '{layer}' hat noch keine Polygone: zeichnen Sie zuerst einige Beispiele</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="99" />
      <source>leave-one-polygon-out accuracy {accuracy}</source>
      <translation>Leave-one-polygon-out-Genauigkeit {accuracy}</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="193" />
      <source>no backend interpreter found (see Settings › Check backend)</source>
      <translation>kein Backend-Interpreter gefunden (siehe Einstellungen › Backend prüfen)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="105" />
      <source>no spatially blocked accuracy (too few polygons or blocks): the leave-one-polygon-out one is optimistic</source>
      <translation>keine räumlich geblockte Genauigkeit (zu wenige Polygone oder Blöcke): die Leave-one-polygon-out-Genauigkeit ist optimistisch</translation>
    </message>
    <message>
      <location filename="../plugin/readiness.py" line="33" />
      <source>pick a class field (the attribute holding each polygon's class)</source>
      <translation>wählen Sie ein Klassenfeld (das Attribut mit der Klasse jedes Polygons)</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="47" />
      <source>polygons</source>
      <translation>Polygone</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="42" />
      <source>segmentation</source>
      <translation>Segmentierung</translation>
    </message>
    <message>
      <location filename="../plugin/layers.py" line="43" />
      <source>similarity</source>
      <translation>Ähnlichkeit</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="101" />
      <source>spatially blocked accuracy {accuracy} (trust this one: neighbouring polygons share context, so leave-one-polygon-out flatters the map)</source>
      <translation>räumlich geblockte Genauigkeit {accuracy} (dieser ist zu trauen: benachbarte Polygone teilen Kontext, daher schönt Leave-one-polygon-out die Karte)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="27" />
      <source>the before and after layers are the same layer</source>
      <translation>Vorher- und Nachher-Layer sind derselbe Layer</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="36" />
      <source>the layer to vectorise must be a GeoTIFF file (a Terraprobe result)</source>
      <translation>der zu vektorisierende Layer muss eine GeoTIFF-Datei sein (ein Terraprobe-Ergebnis)</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="181" />
      <source>the result could not be added: {error}</source>
      <translation>das Ergebnis konnte nicht hinzugefügt werden: {error}</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="75" />
      <source>the samples in '{layer}' have no class in '{field}' yet: give each polygon a class</source>
      <translation>die Beispiele in '{layer}' haben noch keine Klasse in '{field}': geben Sie jedem Polygon eine Klasse</translation>
    </message>
    <message>
      <location filename="../plugin/samples.py" line="77" />
      <source>the samples in '{layer}' have one class only ('{name}'): Classify and Segment need polygons of at least two classes</source>
      <translation>die Beispiele in „{layer}“ haben nur eine Klasse („{name}“): Klassifizieren und Segmentieren brauchen Polygone mindestens zweier Klassen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock_runs.py" line="80" />
      <source>type the classes to vectorise (values or names, separated by commas)</source>
      <translation>geben Sie die zu vektorisierenden Klassen ein (Werte oder Namen, durch Kommas getrennt)</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="219" />
      <source>{action} failed: {reason}</source>
      <translation>{action} fehlgeschlagen: {reason}</translation>
    </message>
    <message>
      <location filename="../plugin/result_names.py" line="43" />
      <source>{steps} steps</source>
      <translation>{steps} Schritte</translation>
    </message>
    <message>
      <location filename="../plugin/runner.py" line="158" />
      <source>{task} (cancelled)</source>
      <translation>{task} (abgebrochen)</translation>
    </message>
  </context>
  <context>
    <name>TerraprobeAlgorithm</name>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="423" />
      <source>Add per-patch band statistics (needs the optical layer)</source>
      <translation>Bandstatistik je Patch hinzufügen (braucht den optischen Layer)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="62" />
      <source>After (later date)</source>
      <translation>Nachher (späteres Datum)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="69" />
      <source>Area (empty: whole layer)</source>
      <translation>Gebiet (leer: ganzer Layer)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="76" />
      <source>Auto</source>
      <translation>Automatisch</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="443" />
      <source>Auto (never below the raw bands)</source>
      <translation>Auto (nie schlechter als die Rohbänder)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="239" />
      <source>Batch size</source>
      <translation>Stapelgröße</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="61" />
      <source>Before (earlier date)</source>
      <translation>Vorher (früheres Datum)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="75" />
      <source>Bundled model (Auto: picked by the optical layer's sensor)</source>
      <translation>Mitgeliefertes Modell (Auto: nach dem Sensor des optischen Layers)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="41" />
      <source>Change (between two dates)</source>
      <translation>Veränderung (zwischen zwei Zeitpunkten)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="74" />
      <source>Change magnitude</source>
      <translation>Veränderungsstärke</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="76" />
      <source>Change mask (empty: &lt;magnitude&gt;_mask.tif)</source>
      <translation>Veränderungsmaske (leer: &lt;Stärke&gt;_mask.tif)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="78" />
      <source>Change types</source>
      <translation>Veränderungsarten</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="418" />
      <source>Change types (clusters of change vectors; 0: off)</source>
      <translation>Veränderungsarten (Cluster der Veränderungsvektoren; 0: aus)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="201" />
      <source>Choose an optical layer (or existing embeddings).</source>
      <translation>Wählen Sie einen optischen Layer (oder vorhandene Embeddings).</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="86" />
      <source>Choose the before and after layers.</source>
      <translation>Wählen Sie den Vorher- und den Nachher-Layer.</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="122" />
      <source>Class map (a Terraprobe result)</source>
      <translation>Klassenkarte (ein Terraprobe-Ergebnis)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="430" />
      <source>Class probabilities (one band per class)</source>
      <translation>Klassenwahrscheinlichkeiten (ein Band je Klasse)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="441" />
      <source>Classifier</source>
      <translation>Klassifikator</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="401" />
      <source>Classify (kNN, random forest or gradient boosting from sample polygons)</source>
      <translation>Klassifizieren (kNN, Random Forest oder Gradient Boosting aus Beispielpolygonen)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="355" />
      <source>Cluster (k-means or HDBSCAN on embeddings)</source>
      <translation>Clustern (k-means oder HDBSCAN auf Embeddings)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="59" />
      <source>Compare</source>
      <translation>Vergleichen</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="42" />
      <source>Compares two dates per patch: two embedding fields (AlphaEarth, TESSERA, Embed's), or two optical or radar layers embedded with one model (another grid is aligned on the fly). Writes the change magnitude (cosine distance), a change mask by an automatic (robust or Otsu) or fixed threshold, and optionally change types (clusters of the change vectors).</source>
      <translation>Vergleicht zwei Zeitpunkte je Patch: zwei Embedding-Felder (AlphaEarth, TESSERA, aus Einbetten) oder zwei optische oder Radar-Layer, eingebettet mit einem Modell (ein anderes Raster wird beim Lesen angeglichen). Schreibt die Veränderungsstärke (Kosinus-Abstand), eine Veränderungsmaske mit automatischem (robust oder Otsu) oder festem Schwellenwert und optional Veränderungsarten (Cluster der Veränderungsvektoren).</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="428" />
      <source>Confidence (empty: &lt;class map&gt;_confidence.tif)</source>
      <translation>Konfidenz (leer: &lt;Klassenkarte&gt;_confidence.tif)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="124" />
      <source>Confidence raster (empty: Classify's beside the class map, if any)</source>
      <translation>Konfidenzraster (leer: das von Klassifizieren neben der Klassenkarte, falls vorhanden)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="490" />
      <source>Cosine similarity of every patch's embedding to the patch at a point (or inside polygons).</source>
      <translation>Kosinusähnlichkeit des Embeddings jedes Patches zum Patch an einem Punkt (oder in Polygonen).</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="223" />
      <source>Device</source>
      <translation>Gerät</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="274" />
      <source>Distance</source>
      <translation>Abstand</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="334" />
      <source>Embed (encoder features + RGB preview)</source>
      <translation>Einbetten (Encoder-Merkmale + RGB-Vorschau)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="156" />
      <source>Embedding field (from Embed, or any multi-band float raster such as AlphaEarth or TESSERA; skips the encoder)</source>
      <translation>Embedding-Feld (aus Einbetten oder ein beliebiges mehrkanaliges Gleitkomma-Raster wie AlphaEarth oder TESSERA; ersetzt den Encoder)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="347" />
      <source>Embedding preview (PCA RGB; empty: &lt;output&gt;_pca.tif)</source>
      <translation>Embedding-Vorschau (PCA-RGB; leer: &lt;Ausgabe&gt;_pca.tif)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="444" />
      <source>Gradient boosting</source>
      <translation>Gradient Boosting</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="419" />
      <source>Group the changed patches into this many change types ("from–to"; --change-clusters; off: none)</source>
      <translation>Die veränderten Patches in so viele Veränderungsarten gruppieren („von–nach“; --change-clusters; aus: keine)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="356" />
      <source>Groups the patches' embeddings into k clusters with k-means, or into density clusters with HDBSCAN (no k; a noise class); writes a paletted class map.</source>
      <translation>Gruppiert die Embeddings der Patches mit k-means in k Cluster oder mit HDBSCAN in Dichtecluster (kein k; eine Rauschklasse); schreibt eine Klassenkarte mit Palette.</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="475" />
      <source>HDBSCAN (no k, noise class)</source>
      <translation>HDBSCAN (kein k, Rauschklasse)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="370" />
      <source>HDBSCAN: smallest cluster in sampled patches (0: auto)</source>
      <translation>HDBSCAN: kleinster Cluster in Stichproben-Patches (0: auto)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>How embedding vectors are compared (--distance)</source>
      <translation>Wie Embedding-Vektoren verglichen werden (--distance)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>How embedding vectors are read (--normalise)</source>
      <translation>Wie Embedding-Vektoren gelesen werden (--normalise)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="474" />
      <source>How patches are grouped (--method)</source>
      <translation>Wie Patches gruppiert werden (--method)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="441" />
      <source>How the label map is learnt (--classifier)</source>
      <translation>Wie die Klassenkarte gelernt wird (--classifier)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="271" />
      <source>L2 (unit length)</source>
      <translation>L2 (Einheitslänge)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="403" />
      <source>Labels every patch from sample polygons: a kNN vote in embedding space, or a random forest / gradient boosting (optionally with per-patch band statistics); writes a class map named after the class field's values, a confidence map and optionally class probabilities. Reports the leave-one-polygon-out and the spatially blocked accuracy: trust the blocked one.</source>
      <translation>Beschriftet jeden Patch aus Beispielpolygonen: eine kNN-Abstimmung im Embedding-Raum oder ein Random Forest / Gradient Boosting (optional mit Bandstatistik je Patch); schreibt eine nach den Werten des Klassenfelds benannte Klassenkarte, eine Konfidenzkarte und optional Klassenwahrscheinlichkeiten. Meldet die Leave-one-polygon-out- und die räumlich geblockte Genauigkeit: verlässlich ist die geblockte.</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="474" />
      <source>Method</source>
      <translation>Methode</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="127" />
      <source>Minimum area (m²)</source>
      <translation>Mindestfläche (m²)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="141" />
      <source>Model file</source>
      <translation>Modelldatei</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="68" />
      <source>Model file for optical/radar dates</source>
      <translation>Modelldatei für optische/Radar-Zeitpunkte</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="454" />
      <source>Neighbours (k of kNN)</source>
      <translation>Nachbarn (k des kNN)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="270" />
      <source>Normalise vectors</source>
      <translation>Vektoren normalisieren</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="479" />
      <source>Number of clusters (k)</source>
      <translation>Anzahl der Cluster (k)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="132" />
      <source>Only these classes (values or names, separated by commas, e.g. change for a change mask's changed areas; empty: all)</source>
      <translation>Nur diese Klassen (Werte oder Namen, durch Kommas getrennt, z. B. change für die veränderten Flächen einer Veränderungsmaske; leer: alle)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="163" />
      <source>Optical units (auto: detected)</source>
      <translation>Optische Einheiten (auto: erkannt)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="134" />
      <source>Polygons</source>
      <translation>Polygone</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="164" />
      <source>Radar units (auto: detected)</source>
      <translation>Radar-Einheiten (auto: erkannt)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="444" />
      <source>Random forest</source>
      <translation>Random Forest</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="482" />
      <source>Random seed</source>
      <translation>Zufallsstartwert</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="335" />
      <source>Runs the encoder over the layer and writes one embedding per 8×8 patch (a multi-band GeoTIFF, float16) plus an RGB preview of its first three principal components.</source>
      <translation>Lässt den Encoder über den Layer laufen und schreibt ein Embedding je 8×8-Patch (ein mehrkanaliges GeoTIFF, float16) sowie eine RGB-Vorschau seiner ersten drei Hauptkomponenten.</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="482" />
      <source>Seed of the initial centres and the HDBSCAN sample (--seed)</source>
      <translation>Startwert der Anfangszentren und der HDBSCAN-Stichprobe (--seed)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="450" />
      <source>Segment (train a head on samples and apply it)</source>
      <translation>Segmentieren (einen Kopf auf Beispielen trainieren und anwenden)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="144" />
      <source>Sensor of the optical layer (auto: from its band names)</source>
      <translation>Sensor des optischen Layers (auto: aus den Bandnamen)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="71" />
      <source>Sensor of the optical layers (auto: band names)</source>
      <translation>Sensor der optischen Layer (auto: Bandnamen)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="489" />
      <source>Similarity (to a point or polygons)</source>
      <translation>Ähnlichkeit (zu einem Punkt oder Polygonen)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="129" />
      <source>Simplification tolerance (map units; 0: exact pixel outlines)</source>
      <translation>Vereinfachungstoleranz (Karteneinheiten; 0: exakte Pixelumrisse)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="434" />
      <source>Spatially blocked accuracy (the one to trust)</source>
      <translation>Räumlich geblockte Genauigkeit (die verlässliche)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="141" />
      <source>The class map must be a GeoTIFF file (a Terraprobe result).</source>
      <translation>Die Klassenkarte muss eine GeoTIFF-Datei sein (ein Terraprobe-Ergebnis).</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="64" />
      <source>Threshold: auto (robust for pixel change), robust, otsu, otsu3 (dates of different seasons) or a number</source>
      <translation>Schwellenwert: auto (robust für Pixelveränderung), robust, otsu, otsu3 (Aufnahmen verschiedener Jahreszeiten) oder eine Zahl</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="234" />
      <source>Tile overlap</source>
      <translation>Kachelüberlappung</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="235" />
      <source>Tile overlap of the encoder in pixels (multiple of 8; --overlap)</source>
      <translation>Kachelüberlappung des Encoders in Pixeln (Vielfaches von 8; --overlap)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="220" />
      <source>Tile size of the encoder in pixels (--window)</source>
      <translation>Kachelgröße des Encoders in Pixeln (--window)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="239" />
      <source>Tiles per encoder call (--batch-size); lower it when memory is short</source>
      <translation>Kacheln je Encoder-Aufruf (--batch-size); bei knappem Speicher verringern</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="729" />
      <source>Training steps (Segment)</source>
      <translation>Trainingsschritte (Segmentieren)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="729" />
      <source>Training steps of the segmentation head (AdamW; --steps)</source>
      <translation>Trainingsschritte des Segmentierungskopfs (AdamW; --steps)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="451" />
      <source>Trains a small segmentation head on frozen embeddings from sample polygons (or a label raster), or applies an existing head, and writes a class map.</source>
      <translation>Trainiert einen kleinen Segmentierungskopf auf eingefrorenen Embeddings aus Beispielpolygonen (oder einem Label-Raster) oder wendet einen vorhandenen Kopf an und schreibt eine Klassenkarte.</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="109" />
      <source>Turns a class, cluster, segmentation or change map into polygons (GeoPackage) with class, area and mean confidence, styled in the map's colours; smaller regions than the minimum area merge into their largest neighbour.</source>
      <translation>Wandelt eine Klassen-, Cluster-, Segmentierungs- oder Veränderungskarte in Polygone (GeoPackage) mit Klasse, Fläche und mittlerer Konfidenz um, in den Farben der Karte dargestellt; Regionen unter der Mindestfläche gehen in ihrer größten Nachbarregion auf.</translation>
    </message>
    <message>
      <location filename="../plugin/processing/change_algorithms.py" line="108" />
      <source>Vectorise (class map to polygons)</source>
      <translation>Vektorisieren (Klassenkarte zu Polygonen)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="223" />
      <source>Where the encoder runs (--device)</source>
      <translation>Wo der Encoder läuft (--device)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="219" />
      <source>Window size (pixels, multiple of 8)</source>
      <translation>Fenstergröße (Pixel, Vielfaches von 8)</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="322" />
      <source>Writing '{layer}' to a temporary GeoTIFF (not a plain raster file)</source>
      <translation>'{layer}' wird in ein temporäres GeoTIFF geschrieben (keine einfache Rasterdatei)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="271" />
      <source>as they are</source>
      <translation>unverändert</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="36" />
      <source>auto</source>
      <translation>auto</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="43" />
      <source>cosine</source>
      <translation>Kosinus</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="43" />
      <source>euclidean</source>
      <translation>euklidisch</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="479" />
      <source>k of k-means (--k)</source>
      <translation>k von k-Means (--k)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="454" />
      <source>k of the kNN vote of Classify (--neighbors)</source>
      <translation>k der kNN-Abstimmung beim Klassifizieren (--neighbors)</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="334" />
      <source>k-means</source>
      <translation>k-Means</translation>
    </message>
    <message>
      <location filename="../backend/contract/commands.py" line="443" />
      <source>kNN</source>
      <translation>kNN</translation>
    </message>
    <message>
      <location filename="../plugin/processing/algorithms.py" line="78" />
      <source>{what} (empty: the bundled model above)</source>
      <translation>{what} (leer: das mitgelieferte Modell oben)</translation>
    </message>
    <message>
      <source>Compares two dates per patch: two embedding fields (AlphaEarth, TESSERA, Embed's), or two optical or radar layers embedded with one model (another grid is aligned on the fly). Writes the change magnitude (cosine distance), a change mask by an automatic (Otsu) or fixed threshold, and optionally change types (clusters of the change vectors).</source>
      <translation type="obsolete">Vergleicht zwei Zeitpunkte je Patch: zwei Embedding-Felder (AlphaEarth, TESSERA, aus Einbetten) oder zwei optische oder Radar-Layer, eingebettet mit einem Modell (ein anderes Raster wird direkt angeglichen). Schreibt die Veränderungsstärke (Kosinusabstand), eine Veränderungsmaske nach einem automatischen (Otsu) oder festen Schwellenwert und optional Veränderungsarten (Cluster der Veränderungsvektoren).</translation>
    </message>
    <message>
      <source>Threshold: otsu (automatic), otsu3 (dates of different seasons) or a number</source>
      <translation type="obsolete">Schwellenwert: otsu (automatisch), otsu3 (Zeitpunkte verschiedener Jahreszeiten) oder eine Zahl</translation>
    </message>
  </context>
  <context>
    <name>TerraprobeDock</name>
    <message>
      <location filename="../plugin/ui/dock.py" line="617" />
      <source>(+{n} layer(s))</source>
      <translation>(+{n} Layer)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="168" />
      <source>Click a place on the map to find similar places.</source>
      <translation>Klicken Sie auf einen Ort der Karte, um ähnliche Orte zu finden.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="398" />
      <source>Draw sample polygons on the map (Add Polygon is on) and pick each one's class; saved in {path}.</source>
      <translation>Zeichnen Sie Beispielpolygone auf der Karte (Polygon hinzufügen ist aktiv) und wählen Sie für jedes die Klasse; gespeichert in {path}.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="306" />
      <source>Move them beside the project</source>
      <translation>Neben das Projekt verschieben</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="315" />
      <source>Moved {n} layer(s) to {path}.</source>
      <translation>{n} Layer nach {path} verschoben.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="456" />
      <source>Not available: {reason}</source>
      <translation>Nicht verfügbar: {reason}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="317" />
      <source>Not moved (being edited; save the edits and save the project again): {layers}.</source>
      <translation>Nicht verschoben (in Bearbeitung; speichern Sie die Änderungen und das Projekt erneut): {layers}.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="433" />
      <source>Ready.</source>
      <translation>Bereit.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="279" />
      <source>Save Terraprobe results in</source>
      <translation>Terraprobe-Ergebnisse speichern in</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="116" />
      <source>Settings</source>
      <translation>Einstellungen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="292" />
      <source>The project is not saved yet: results are kept in {path}. Save the project and Terraprobe offers to move them beside it.</source>
      <translation>Das Projekt ist noch nicht gespeichert: Ergebnisse liegen in {path}. Speichern Sie das Projekt, dann bietet Terraprobe an, sie daneben zu verschieben.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="410" />
      <source>a run is in progress (Cancel stops it)</source>
      <translation>eine Berechnung läuft (Abbrechen hält sie an)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="490" />
      <source>choose an optical layer</source>
      <translation>wählen Sie einen optischen Layer</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="353" />
      <source>draw a rectangle on the map first (Area › Draw)</source>
      <translation>zeichnen Sie zuerst ein Rechteck auf der Karte (Gebiet › Zeichnen)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="615" />
      <source>no layer</source>
      <translation>kein Layer</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="358" />
      <source>the chosen area does not overlap the optical layer</source>
      <translation>das gewählte Gebiet überlappt den optischen Layer nicht</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="595" />
      <source>the clicked place is outside the chosen area ({area}): click inside it, or choose Area › Layer extent</source>
      <translation>der angeklickte Ort liegt außerhalb des gewählten Gebiets ({area}): klicken Sie hinein oder wählen Sie Gebiet › Layerausdehnung</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="598" />
      <source>the clicked place is outside the layer {layer}</source>
      <translation>der angeklickte Ort liegt außerhalb des Layers {layer}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="183" />
      <source>{action} cancelled; nothing was added.</source>
      <translation>{action} abgebrochen; nichts wurde hinzugefügt.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="633" />
      <source>{action} done: {layers}</source>
      <translation>{action} fertig: {layers}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="181" />
      <source>{action} failed: {reason}</source>
      <translation>{action} fehlgeschlagen: {reason}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="605" />
      <source>{action}: starting the backend…</source>
      <translation>{action}: das Backend wird gestartet…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="272" />
      <source>{name} (your folder)</source>
      <translation>{name} (Ihr Ordner)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="273" />
      <source>{name}, beside the project</source>
      <translation>{name}, neben dem Projekt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="303" />
      <source>{n} Terraprobe layer(s) are saved in {path}, outside the project folder.</source>
      <translation>{n} Terraprobe-Layer sind in {path} gespeichert, außerhalb des Projektordners.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="632" />
      <source>{n} warning(s): see the message bar</source>
      <translation>{n} Warnung(en): siehe Meldungsleiste</translation>
    </message>
    <message>
      <location filename="../plugin/ui/dock.py" line="274" />
      <source>{path} (the project is not saved yet)</source>
      <translation>{path} (das Projekt ist noch nicht gespeichert)</translation>
    </message>
  </context>
  <context>
    <name>TerraprobeModels</name>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="77" />
      <source>(or use From file… with a local copy)</source>
      <translation>(oder nutzen Sie Aus Datei… mit einer lokalen Kopie)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="128" />
      <source>A folder (http://, https://, file:// or a path) holding the release files under their original names, e.g. CROMA_base.pt</source>
      <translation>Ein Ordner (http://, https://, file:// oder ein Pfad) mit den Veröffentlichungsdateien unter ihren ursprünglichen Namen, z. B. CROMA_base.pt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="36" />
      <source>Bands</source>
      <translation>Bänder</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="140" />
      <source>Cancel</source>
      <translation>Abbrechen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="204" />
      <source>Cancelled; a download resumes where it stopped.</source>
      <translation>Abgebrochen; ein Download wird dort fortgesetzt, wo er anhielt.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="256" />
      <source>Checkpoint file</source>
      <translation>Checkpoint-Datei</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="257" />
      <source>Checkpoints (*.pt *.pth *.ckpt);;All files (*)</source>
      <translation>Checkpoints (*.pt *.pth *.ckpt);;Alle Dateien (*)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="141" />
      <source>Close</source>
      <translation>Schließen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="136" />
      <source>Download</source>
      <translation>Herunterladen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="202" />
      <source>Failed: {message}</source>
      <translation>Fehlgeschlagen: {message}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="83" />
      <location filename="../plugin/ui/models_dialog.py" line="137" />
      <source>From file…</source>
      <translation>Aus Datei…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="107" />
      <source>Get models</source>
      <translation>Modelle holen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="240" />
      <source>Getting {name}…</source>
      <translation>{name} wird geholt…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="36" />
      <source>Licence</source>
      <translation>Lizenz</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="35" />
      <source>Model</source>
      <translation>Modell</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="113" />
      <source>Models are stored in {folder} and kept when the plugin is upgraded. Downloads resume where they stopped and are verified before use.</source>
      <translation>Modelle werden in {folder} gespeichert und bleiben bei Plugin-Aktualisierungen erhalten. Downloads werden dort fortgesetzt, wo sie anhielten, und vor der Nutzung geprüft.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="222" />
      <source>Reading the model list…</source>
      <translation>Die Modellliste wird gelesen…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="139" />
      <source>Remove</source>
      <translation>Entfernen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="277" />
      <source>Remove model</source>
      <translation>Modell entfernen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="275" />
      <source>Remove {name} ({size}) from {folder}? Getting it again means downloading it again.</source>
      <translation>{name} ({size}) aus {folder} entfernen? Um es wieder zu nutzen, muss es erneut heruntergeladen werden.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="35" />
      <source>Size</source>
      <translation>Größe</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="130" />
      <source>Source</source>
      <translation>Quelle</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="37" />
      <source>Status</source>
      <translation>Status</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="252" />
      <source>Terraprobe: get {name}</source>
      <translation>Terraprobe: {name} holen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="223" />
      <source>Terraprobe: list models</source>
      <translation>Terraprobe: Modelle auflisten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="294" />
      <source>Terraprobe: remove {name}</source>
      <translation>Terraprobe: {name} entfernen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="269" />
      <source>Terraprobe: verify {name}</source>
      <translation>Terraprobe: {name} prüfen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="138" />
      <source>Verify</source>
      <translation>Prüfen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="60" />
      <source>bundled</source>
      <translation>mitgeliefert</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="80" />
      <source>click Download again: it resumes</source>
      <translation>klicken Sie erneut auf Herunterladen: es wird fortgesetzt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="62" />
      <source>installed</source>
      <translation>installiert</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="64" />
      <source>not installed</source>
      <translation>nicht installiert</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="127" />
      <source>official release; or a mirror folder URL / local folder</source>
      <translation>offizielle Veröffentlichung; oder URL eines Spiegelordners / lokaler Ordner</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="74" />
      <source>put a mirror in the Source field, or use From file… for a local copy</source>
      <translation>geben Sie im Feld Quelle einen Spiegel an oder nutzen Sie Aus Datei… für eine lokale Kopie</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="72" />
      <source>put another address in the Source field</source>
      <translation>geben Sie im Feld Quelle eine andere Adresse an</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="278" />
      <source>size unknown</source>
      <translation>Größe unbekannt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="81" />
      <location filename="../plugin/ui/models_dialog.py" line="82" />
      <source>the Source field</source>
      <translation>das Feld Quelle</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="78" />
      <source>use From file… with a local copy</source>
      <translation>nutzen Sie Aus Datei… mit einer lokalen Kopie</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="244" />
      <source>{name} is installed and selected in the dock's model list ({path}).</source>
      <translation>{name} ist installiert und in der Modellliste des Bedienfelds ausgewählt ({path}).</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="292" />
      <source>{name} removed.</source>
      <translation>{name} entfernt.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/models_dialog.py" line="266" />
      <source>{name}: valid ({tensors} tensors, dim {dim})</source>
      <translation>{name}: gültig ({tensors} Tensoren, Dimension {dim})</translation>
    </message>
  </context>
  <context>
    <name>TerraprobePlugin</name>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="151" />
      <source>Add the bundled Sentinel-1/2 flood scene and its sample polygons to the project</source>
      <translation>Die mitgelieferte Sentinel-1/2-Hochwasserszene und ihre Beispielpolygone zum Projekt hinzufügen</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="154" />
      <source>Help</source>
      <translation>Hilfe</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="149" />
      <source>Load demo data</source>
      <translation>Demodaten laden</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="157" />
      <source>Open the Terraprobe guide (README, Using it in QGIS)</source>
      <translation>Die Terraprobe-Anleitung öffnen (README, Nutzung in QGIS)</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="34" />
      <source>Sen1Floods11 S1 (demo)</source>
      <translation>Sen1Floods11 S1 (Demo)</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="33" />
      <source>Sen1Floods11 S2 (demo)</source>
      <translation>Sen1Floods11 S2 (Demo)</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="36" />
      <source>Sen1Floods11 samples (demo)</source>
      <translation>Sen1Floods11 Beispiele (Demo)</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="146" />
      <source>Show the Terraprobe panel (foundation models over raster layers)</source>
      <translation>Terraprobe-Bedienfeld anzeigen (Foundation-Modelle für Rasterlayer)</translation>
    </message>
    <message>
      <location filename="../plugin/terraprobe_plugin.py" line="143" />
      <source>Terraprobe panel</source>
      <translation>Terraprobe-Bedienfeld</translation>
    </message>
  </context>
  <context>
    <name>TerraprobeSettings</name>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="99" />
      <source>Backend</source>
      <translation>Backend</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="56" />
      <source>Backend Python</source>
      <translation>Backend-Python</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="118" />
      <source>Backend Python changed: checking it…</source>
      <translation>Backend-Python geändert: wird geprüft…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="64" />
      <source>Cache folder</source>
      <translation>Cache-Ordner</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="71" />
      <source>Check backend</source>
      <translation>Backend prüfen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="172" />
      <source>Check cancelled.</source>
      <translation>Prüfung abgebrochen.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="166" />
      <source>Checking {python} …</source>
      <translation>{python} wird geprüft …</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="66" />
      <source>Cluster, Classify, Segment, Similarity, Change, Vectorise and Embed reuse one backend process instead of starting PyTorch for every action</source>
      <translation>Clustern, Klassifizieren, Segmentieren, Ähnlichkeit, Veränderung, Vektorisieren und Einbetten nutzen einen Backend-Prozess, statt PyTorch für jede Aktion neu zu starten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="75" />
      <source>Copy report</source>
      <translation>Bericht kopieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="60" />
      <source>Default device</source>
      <translation>Standardgerät</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="72" />
      <source>Install PyTorch and the backend's packages into a per-user environment ({folder}), kept across plugin upgrades</source>
      <translation>PyTorch und die Pakete des Backends in eine Umgebung je Benutzer installieren ({folder}); sie bleibt bei Plugin-Aktualisierungen erhalten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="65" />
      <source>Keep the backend running between actions</source>
      <translation>Das Backend zwischen Aktionen weiterlaufen lassen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="140" />
      <source>No backend environment yet: click "Set up backend…" once (a few minutes; it is kept across plugin upgrades).</source>
      <translation>Noch keine Backend-Umgebung: klicken Sie einmal auf „Backend einrichten…“ (einige Minuten; sie bleibt bei Plugin-Aktualisierungen erhalten).</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="53" />
      <source>Python interpreter of the backend environment (not QGIS's Python); empty: the one Set up backend… installed</source>
      <translation>Python-Interpreter der Backend-Umgebung (nicht das Python von QGIS); leer: der von Backend einrichten… installierte</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="102" />
      <source>Server URL</source>
      <translation>Server-URL</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="72" />
      <source>Set up backend…</source>
      <translation>Backend einrichten…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="182" />
      <source>The backend does not run with {python}: {message}</source>
      <translation>Das Backend läuft nicht mit {python}: {message}</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="184" />
      <source>To get a working backend environment:</source>
      <translation>So erhalten Sie eine funktionierende Backend-Umgebung:</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="106" />
      <source>Token file</source>
      <translation>Token-Datei</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="61" />
      <source>Where embeddings are kept so that later actions on the same inputs reuse them</source>
      <translation>Wo Embeddings aufbewahrt werden, damit spätere Aktionen mit denselben Eingaben sie wiederverwenden</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="104" />
      <source>a copy of the server's token file (the file "token" in its work folder)</source>
      <translation>eine Kopie der Token-Datei des Servers (die Datei „token“ in seinem Arbeitsordner)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="55" />
      <source>auto: the environment of Set up backend…</source>
      <translation>auto: die Umgebung von Backend einrichten…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="96" />
      <source>local (this machine)</source>
      <translation>lokal (dieser Rechner)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="96" />
      <source>remote (job server)</source>
      <translation>entfernt (Job-Server)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/settings_panel.py" line="96" />
      <source>remote: Embed, Cluster, Classify, Segment, Similarity, Change and Vectorise run on a Terraprobe job server (see docs/remote.md)</source>
      <translation>entfernt: Einbetten, Clustern, Klassifizieren, Segmentieren, Ähnlichkeit, Veränderung und Vektorisieren laufen auf einem Terraprobe-Job-Server (siehe docs/remote.md)</translation>
    </message>
  </context>
  <context>
    <name>TerraprobeSetup</name>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="131" />
      <source>Base Python</source>
      <translation>Basis-Python</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="113" />
      <source>CPU</source>
      <translation>CPU</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="114" />
      <source>CUDA (NVIDIA GPU)</source>
      <translation>CUDA (NVIDIA-GPU)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="146" />
      <source>Cancel</source>
      <translation>Abbrechen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="226" />
      <source>Cancelled. Retry continues where it stopped.</source>
      <translation>Abgebrochen. Erneut versuchen setzt dort fort, wo es anhielt.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="148" />
      <source>Close</source>
      <translation>Schließen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="147" />
      <source>Copy report</source>
      <translation>Bericht kopieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="104" />
      <source>Creates a Python environment with PyTorch and the backend's pinned packages in your QGIS profile (kept when the plugin is upgraded). It downloads about 1 GB (CPU) to 3 GB (CUDA) unless your package sources are local.</source>
      <translation>Legt in Ihrem QGIS-Profil eine Python-Umgebung mit PyTorch und den festgelegten Paketen des Backends an (sie bleibt bei Plugin-Aktualisierungen erhalten). Sie lädt etwa 1 GB (CPU) bis 3 GB (CUDA) herunter, sofern Ihre Paketquellen nicht lokal sind.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="132" />
      <source>Delete and recreate an existing environment</source>
      <translation>Eine vorhandene Umgebung löschen und neu anlegen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="142" />
      <source>Diagnostics (python, torch, CUDA, GPU, GDAL) after the check.</source>
      <translation>Diagnose (Python, torch, CUDA, GPU, GDAL) nach der Prüfung.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="111" />
      <source>Environment folder</source>
      <translation>Umgebungsordner</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="128" />
      <source>Find links</source>
      <translation>Zusätzliche Paketquellen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="145" />
      <source>Install</source>
      <translation>Installieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="119" />
      <source>Installer</source>
      <translation>Installationsprogramm</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="140" />
      <source>Installer output appears here.</source>
      <translation>Die Ausgabe der Installation erscheint hier.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="177" />
      <source>Installing into {folder}…</source>
      <translation>Installation nach {folder}…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="125" />
      <source>Package index URL</source>
      <translation>Paketindex-URL</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="115" />
      <source>PyTorch build</source>
      <translation>PyTorch-Variante</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="122" />
      <source>PyTorch index URL</source>
      <translation>PyTorch-Index-URL</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="137" />
      <source>Ready.</source>
      <translation>Bereit.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="211" />
      <source>Reinstall</source>
      <translation>Neu installieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="224" />
      <source>Retry</source>
      <translation>Erneut versuchen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="99" />
      <source>Set up the Terraprobe backend</source>
      <translation>Das Terraprobe-Backend einrichten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="229" />
      <source>Setup failed: {message}. Fix the package sources above if needed, then Retry.</source>
      <translation>Einrichtung fehlgeschlagen: {message}. Korrigieren Sie bei Bedarf die Paketquellen oben und versuchen Sie es erneut.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="200" />
      <source>Step {n} of {count}: {what}…</source>
      <translation>Schritt {n} von {count}: {what}…</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="67" />
      <source>Terraprobe: set up the backend</source>
      <translation>Terraprobe: Backend einrichten</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="212" />
      <source>The backend is ready ({build} build, {installer}). Terraprobe uses it automatically.</source>
      <translation>Das Backend ist bereit ({build}-Variante, {installer}). Terraprobe nutzt es automatisch.</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="113" />
      <source>auto (CUDA when an NVIDIA driver is found)</source>
      <translation>auto (CUDA, wenn ein NVIDIA-Treiber gefunden wird)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="117" />
      <source>auto (uv when installed, else pip)</source>
      <translation>auto (uv, wenn installiert, sonst pip)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="120" />
      <source>automatic (PyTorch's index for the build); 'none' = pip's own configuration</source>
      <translation>automatisch (der PyTorch-Index der Variante); 'none' = die eigene Konfiguration von pip</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="89" />
      <source>cancelled</source>
      <translation>abgebrochen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="124" />
      <source>default: PyPI (or your pip configuration)</source>
      <translation>Standard: PyPI (oder Ihre pip-Konfiguration)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="130" />
      <source>default: QGIS's own Python</source>
      <translation>Standard: das Python von QGIS</translation>
    </message>
    <message>
      <location filename="../plugin/ui/setup_dialog.py" line="126" />
      <source>folders or URLs with wheels, separated by spaces</source>
      <translation>Ordner oder URLs mit Wheels, durch Leerzeichen getrennt</translation>
    </message>
  </context>
  <context>
    <name>VectoriseBox</name>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="92" />
      <source> m²</source>
      <translation> m²</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="88" />
      <source>A class, cluster, segmentation or change mask/types layer</source>
      <translation>Ein Klassen-, Cluster-, Segmentierungs- oder Veränderungsmasken-/-arten-Layer</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="90" />
      <source>Class map</source>
      <translation>Klassenkarte</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="104" />
      <source>Class values or names, separated by commas</source>
      <translation>Klassenwerte oder -namen, durch Kommas getrennt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="105" />
      <source>Classes</source>
      <translation>Klassen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="97" />
      <source>Douglas-Peucker tolerance in the layer's map units (0: exact pixel outlines; --simplify)</source>
      <translation>Douglas-Peucker-Toleranz in den Karteneinheiten des Layers (0: exakte Pixelumrisse)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="95" />
      <source>Minimum area</source>
      <translation>Mindestfläche</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="108" />
      <source>Polygons (GeoPackage) with class, area and mean confidence, styled in the map's colours</source>
      <translation>Polygone (GeoPackage) mit Klasse, Fläche und mittlerer Konfidenz, in den Farben der Karte dargestellt</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="99" />
      <source>Simplify</source>
      <translation>Vereinfachen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="94" />
      <source>Smaller regions merge into their largest neighbour (--min-area)</source>
      <translation>Kleinere Regionen gehen in ihrer größten Nachbarregion auf</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="108" />
      <source>Vectorise</source>
      <translation>Vektorisieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="86" />
      <source>Vectorise a result</source>
      <translation>Ein Ergebnis vektorisieren</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="100" />
      <source>Which classes become polygons (--only): all, the changed areas of a change mask, or the classes you list</source>
      <translation>Welche Klassen zu Polygonen werden (--only): alle, die veränderten Flächen einer Veränderungsmaske oder die aufgeführten Klassen</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="103" />
      <source>e.g. 1,3 or water,urban</source>
      <translation>z. B. 1,3 oder water,urban</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="96" />
      <source>off (exact pixel outlines)</source>
      <translation>aus (exakte Pixelumrisse)</translation>
    </message>
    <message>
      <location filename="../plugin/ui/change_panel.py" line="93" />
      <source>off (keep every region)</source>
      <translation>aus (jede Region behalten)</translation>
    </message>
  </context>
</TS>
