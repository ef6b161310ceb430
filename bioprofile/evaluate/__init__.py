"""Benchmarks of gene and cell embeddings: scoring that returns result objects, apart from their plots.

Every benchmark returns a result of one shape (:class:`~bioprofile.evaluate.report.BenchmarkResult`):
``to_frame()`` (a pandas DataFrame) and ``write(prefix)`` (PREFIX.md and PREFIX.json, with the settings and
provenance of the run); :mod:`bioprofile.pl` draws the same results, and :func:`bioprofile.pl.write_result` writes
one with its figure.

Modules
-------
- :mod:`.gene_tasks` -- GenePT's gene and gene-pair tasks (one module per task family), :func:`run_gene_tasks`
- :mod:`.gene_sets` -- GeneAgent's gene-set task: a model names a set's biological process, scored by ROUGE and
  embedding cosine against the reference term beside a most-frequent-term baseline, :func:`run_gene_sets`
- :mod:`.de_reasoning` -- VCWorld's perturbation-reasoning task: is gene G differentially expressed after drug D
  in cell line C; records, labels from an AnnData, the offline data, :func:`run_de_reasoning`
- :mod:`.responses` -- response-level metrics of models' answers (length, gene entities, causal connectives,
  shares naming a drug or a mutation), :func:`~.responses.analyze_responses`
- :mod:`.clustering` -- k-means / Leiden ARI, AMI and ASW of cell embeddings, :class:`ClusteringResult`
- :mod:`.integration` -- scIB metrics beside PCA, Harmony and BBKNN, :class:`IntegrationResult`
- :mod:`.silhouettes` -- scIB's silhouettes (label, batch, isolated labels) and the exact kNN graph from one pass of
  blocked BLAS distances, equal to scib-metrics' own
- :mod:`.kmeans` -- scIB's KMeans NMI / ARI: scib-metrics' k-means start, its Lloyd iterations on numpy
- :mod:`.neighbors` -- the kNN graph of the scIB neighbour metrics: exact, pynndescent or faiss, self first
- :mod:`.perturbation` -- STATE trained per perturbation feature set beside one-hot, random and control-mean,
  scored by cell-eval on held-out perturbations, :func:`benchmark_perturbation`
- :mod:`.modality_matching` -- matching accuracy and FOSCTTM of paired (RNA + protein) cell embeddings
- :mod:`.report` -- the result shape (:class:`BenchmarkResult`, :class:`WritesItself`, :class:`TableResult`),
  markdown tables, JSON, provenance, output prefixes
- :mod:`.inputs` -- how a benchmark names what it compares: :func:`~.inputs.named_tables` (``NAME=PATH`` or a
  file's stem), :func:`~.inputs.model_label`
"""
