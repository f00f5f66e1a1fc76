"""Evaluation metrics for generators: correct, fast and comparable.

features      - feature extractors: DomainClassifier (default, offline; self-supervised for folders without
                classes), KerasInceptionV3Features (ImageNet; not the published-FID network)
fid_inception - FIDInceptionFeatures: the network of published FIDs, from pytorch-fid's converted weights
distances     - frechet_distance / fid_from_features, kid, precision_recall, density_coverage
scores        - classifier_score (Inception-Score-like), label_accuracy (conditional generators)
memorization  - nearest_training_neighbours, plot_neighbours, pairwise_distances_summary
evaluate      - Evaluator / evaluate_generator, default_evaluator (used by ganlib.run), evaluate_run,
                real_vs_real_reference (the score of real data itself)
"""
from .distances import (density_coverage, feature_statistics, fid_from_features, frechet_distance, kid,
                        kid_subset_size, kth_neighbour_radii, nearest_neighbours, precision_recall)
from .evaluate import (Evaluator, compare_features, default_evaluator, evaluate_generator, evaluate_run,
                       get_extractor, real_vs_real_reference)
from .features import (DomainClassifier, FeatureExtractor, InceptionV3Features, InceptionWeightsNotFoundError,
                       KerasInceptionV3Features, cache_dir, find_inception_weights)
from .fid_inception import FIDInceptionFeatures
from .memorization import nearest_training_neighbours, pairwise_distances_summary, plot_neighbours
from .scores import classifier_score, label_accuracy

__all__ = [
    "frechet_distance", "fid_from_features", "feature_statistics", "kid", "kid_subset_size", "precision_recall",
    "density_coverage",
    "kth_neighbour_radii", "nearest_neighbours", "classifier_score", "label_accuracy",
    "FeatureExtractor", "DomainClassifier", "FIDInceptionFeatures", "KerasInceptionV3Features", "InceptionV3Features",
    "InceptionWeightsNotFoundError",
    "find_inception_weights", "cache_dir",
    "nearest_training_neighbours", "plot_neighbours", "pairwise_distances_summary",
    "Evaluator", "evaluate_generator", "compare_features", "default_evaluator", "evaluate_run", "get_extractor",
    "real_vs_real_reference",
]
