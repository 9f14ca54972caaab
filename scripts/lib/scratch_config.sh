# Sourced by the scripts: writes a classifier config less the keys of the
# fine-tuning recipe (gradual unfreezing, per-stage and discriminative LRs,
# dropouts, length-sorted batches, BatchNorm refresh), so `finetune` without
# --from fills them in with its from-scratch recipe
# (src/pipeline/finetune_recipes.cpp). The baseline is then the recipe that
# trains a random encoder, not the transfer recipe applied to one.
#   scratch_config configs/quickstart-classifier.yaml runs/scratch.yaml
scratch_config() {
  local keys='freeze_to|unfreeze|stage_lrs|discriminative_factor|lr|dropout|length_sort_window|batch_norm_refresh'
  grep -vE "^ *($keys):" "$1" >"$2"
}
