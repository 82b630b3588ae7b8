# Sourced by tests/train/mpi_train.sh and tests/bench/run_dist_bench.sh: two-domain 2-D
# phantoms and the [data] section that reads them.
#   phantom_cases DAKD SIZE SEED   6 source + 6 target cases of SIZE² in ph/, listed in
#                                  cases.csv (columns case,image,label,dataset,split; case 005
#                                  of each domain in split "val", the others "train")
#   data_ini PATCH                 prints [data] over cases.csv: source/target domains, val
#                                  split "val", PATCH² patches, batch 8, 4 classes
#   distill_ini                    prints [distill] with the demo's method (pipelines/demo.ini
#                                  but target_bn): every term that couples the batch's rows
phantom_cases() {
    "$1" phantom --out ph --size "$2,$2" --cases 6 --seed "$3" > /dev/null
    {
        echo "case,image,label,dataset,split"
        for d in source target; do
            for i in 000 001 002 003 004 005; do
                s=train; [ $i = 005 ] && s=val
                echo "${d}_$i,ph/${d}_${i}_image.nii.gz,ph/${d}_${i}_label.nii.gz,${d},$s"
            done
        done
    } > cases.csv
}

data_ini() {
    cat <<INI
[data]
cases = cases.csv
domain_column = dataset
source = source
target = target
split_column = split
train_split = train
val_split = val
target_split = train
patch_d = 1
patch_h = $1
patch_w = $1
batch_size = 8
fg_fraction = 0.5
norm = zscore
classes = 4
INI
}

distill_ini() {
    cat <<INI
[distill]
alpha = 0.5
temp_schedule = adaptive
mix_r0 = 0.8
mix_delta = 0.05
mix_min = 0.2
align = mmd
lambda_align = 0.1
align_tap = bottleneck
lambda_at = 1
lambda_ent = 0.01
self_distill = ema
dynamic_weights = true
dyn_beta = 1
INI
}
