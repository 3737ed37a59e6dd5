"""Maps from embeddings: k-means clusters, kNN labels, segmentation, similarity, QML styles."""
