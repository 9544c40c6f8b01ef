#!/usr/bin/env bash
# core/cli's option tables: one table per filter gives its parser, its --help list and the
# canonical header args (tests/tools/cli-check runs a demo table of every kind and key policy),
# and the converted filters' header args are what they were before the tables (literal lists).
. "$(dirname "$0")/lib.sh"
cd "$T"

# args LINE...: cli-check's key args (the lines after "args:") equal the given lines
args_are() {
    local want got
    want=$(printf '%s\n' "${@:2}")
    got=$(sed -n '/^args:$/,/^misplaced/p' "$1" | sed '1d;/^misplaced/d')
    [ "$got" = "$want" ] || { echo "got: $(echo "$got" | tr '\n' ' ')"; return 1; }
}
cli-check >d.out
check "defaults: every key policy prints its row (EQ, ARG, ARG_EQ, key_name, choice, flag 0, ONOFF off, derived)" \
    args_are d.out n=3 --big -5 --seed=7 fraction=0.10000000000000001 mode=exact --flag 0 --thing span=3
check "defaults: inputs, VIA, NOKEY rows, a custom row at its default, a flag word not given, a string without default and a zero stay out of the key" \
    bash -c "! grep -Eq '^(--input|--via|--run-kind|pair=|word|--label|zero=)' d.out"
cli-check -n 4 --big=-3 --seed 9 --frac 0.3 --mode both --pair 2:5 --flag --set --no-thing --word --label L --span 2 --zero 5 \
    -i f x y >g.out
check "given: values reach their destinations, operands are left" \
    grep -qx 'input=f n=4 big=-3 seed=9 frac=0.29999999999999999 str=abc mode=2 pair=2:5 via=v flag=1 set=1 off=1 word=1 label=L span=2 zero=5 operands=2' g.out
check "given: the key follows the values, in table order (a derived row prints what the filter resolved)" \
    args_are g.out n=4 --big -3 --seed=9 fraction=0.29999999999999999 mode=both pair=2..5 --flag 1 --set --no-thing word --label L span=8 zero=5
cli-check --str q >m.out
check "an option outside the run's kind is left out of the key and reported" \
    bash -c "grep -qx 'misplaced: --str' m.out && ! grep -qx -- '--str' m.out"
cli-check --run-kind 2 --str q >k.out
check "... and keyed in a run of its kind" bash -c "grep -qx -- '--str' k.out && ! grep -q misplaced k.out"
check "--help lists every option row, headings and long options' help on the next line; not the derived row" bash -c "
    cli-check --help >h.out && for o in '-i, --input FILE' '  -n N' '--big L' '--seed S' '--frac F' '--str S' '--pair A:B' \
        '--via V' '--flag' '--set' '--no-thing' '--word' '--label L' '--span N' '--zero Z' '--run-kind K' 'Flags:' 'More:' \
        'Example:' 'Common options:'; do
        grep -qF -- \"\$o\" h.out || { echo \"missing \$o\"; exit 1; }; done &&
    test \"\$(grep -c -- '--span' h.out)\" = 1 && ! grep -q 'n times' h.out &&
    grep -A1 -- '--mode fast|exact|both' h.out | tail -n 1 | grep -q '^ \{24\}a choice'"
check_fails "a row without a key policy is refused before parsing" 1 "option table: --via does not say whether it enters the key" \
    env CLI_CHECK_BROKEN=1 cli-check
check_fails "a derived row that nothing prints is refused" 1 "option table: derived row --span needs a name, a printing key policy and a kind \\(or show\\) to print it" \
    env CLI_CHECK_BROKEN=2 cli-check
check_fails "a bad choice names the choices" 2 "--mode must be fast, exact or both, not 'slow'" cli-check --mode slow
check_fails "an integer out of range" 2 "-n needs an integer in \[1, 9\], not '10'" cli-check -n 10
check_fails "a custom parser's error" 2 "--pair needs A:B, not '3'" cli-check --pair 3
check_fails "an unknown option" 2 "unknown option" cli-check --frob

# the converted filters: header args as they were before the tables
hdr_args() { entk-show "$1" | head -n 1 | grep -o '"args":\[[^]]*\]'; }
entk-modadd -o m.fr
check "entk-modadd args" test "$(hdr_args m.fr)" = '"args":["p=29","encoding=onehot","train_frac=0.69999999999999996","seed=0","rng=entk"]'
entk-modadd -p 11 --encoding tokens --train-frac 0.5 --rng python --seed 3 -o mt.fr
check "entk-modadd args (all given)" test "$(hdr_args mt.fr)" = '"args":["p=11","encoding=tokens","train_frac=0.5","seed=3","rng=python"]'
entk-features -p 11 --freqs 1,3 --family sum -o f.fr
check "entk-features args" test "$(hdr_args f.fr)" = '"args":["p=11","family=sum","freqs=1,3","seed=0"]'
entk-train -q --model mlp --hidden 16 --epochs 1 --ckpt-every 1 --ckpt-dir ck -o tr.fr m.fr
entk-forward -q -m ck/epoch-00001.safetensors -o fw.fr m.fr
check "entk-forward args (modular addition)" test "$(hdr_args fw.fr)" = '"args":["--outputs","logits","--dtype","f64"]'
entk-mkgemma -q -o g --preset tiny
entk-forward -q -m g --ids 1,2,3 --generate 2 --bf16-embed-scale -o fl.fr
check "entk-forward args (language model)" test "$(hdr_args fl.fr)" = \
    '"args":["--outputs","logits","--positions","last","--layers","all","--generate","2","--bf16-embed-scale","1"]'
printf '1\tHi\t_\tINTJ\tUH\t_\t0\troot\t_\t_\n2\t.\t_\tPUNCT\t.\t_\t1\tpunct\t_\t_\n\n' >s.conllu
entk-tag train -q -o s.tag --epochs 1 s.conllu
entk-tag eval -m s.tag -o ev.fr s.conllu >/dev/null
check "entk-tag eval args" test "$(hdr_args ev.fr)" = '"args":["eval","--holdout=0"]'
printf 'Hi.\n<|endoftext|>\nHo.\n' | entk-tag tag -q -m s.tag --stories --keep-partial -o tg.fr
check "entk-tag tag args" test "$(hdr_args tg.fr)" = '"args":["tag","--stories","--keep-partial"]'

# the filters converted next: literal args of a spread of runs, as the filters wrote them before
# their tables (every stream's header where a run writes several)
all_args() { entk-show --name header "$1" | grep -o '"args":\[[^]]*\]' | tr '\n' ' ' | sed 's/ $//'; }
export OPENBLAS_NUM_THREADS=1
check "entk-train args" test "$(hdr_args tr.fr)" = \
    '"args":["model=mlp","config=16,0,0","epochs=1","lr=0.050000000000000003","wd=0.01","batch=0","seed=0","ckpt_every=1","dtype=f32","init=random","rng=entk"]'
entk-train -q --model transformer --d-model 8 --heads 2 --d-mlp 16 --epochs 0 --lr 0.001 --wd 0 --batch 8 --seed 2 \
    --rng torch --dtype f64 --ckpt-dir ckt -o trt.fr "$(entk-modadd -q -p 7 --encoding tokens -o mt.fr && echo mt.fr)"
check "entk-train args (transformer, all given)" test "$(hdr_args trt.fr)" = \
    '"args":["model=transformer","config=8,2,16","epochs=0","lr=0.001","wd=0","batch=8","seed=2","ckpt_every=20","dtype=f64","init=random","rng=torch"]'
entk-jacobian -q -m ck/epoch-00001.safetensors -o j.fr m.fr
check "entk-jacobian args (checkpoint)" test "$(hdr_args j.fr)" = '"args":["params=W1,W2","form=factored","dtype=f64","block_rows=0"]'
ckey=$(entk-show --name header j.fr | grep -o '"key":"[0-9a-f]*"' | sed -n 2p | cut -d'"' -f4)  # the checkpoint's
entk-train -q --model mlp --init ck/epoch-00001.safetensors --epochs 0 --ckpt-dir cki -o tri.fr m.fr
check "entk-train args (--init: its key)" test "$(hdr_args tri.fr)" = \
    "\"args\":[\"model=mlp\",\"config=16,0,0\",\"epochs=0\",\"lr=0.050000000000000003\",\"wd=0.01\",\"batch=0\",\"seed=0\",\"ckpt_every=10\",\"dtype=f32\",\"init=$ckey\",\"rng=entk\"]"
entk-jacobian -q -m ck/epoch-00001.safetensors -m ck/epoch-00001.safetensors --params W2 --form explicit --dtype f32 \
    --block-rows 4 --block-mb 1 --outputs sum -o js.fr m.fr
check "entk-jacobian args (two checkpoints, all given)" test "$(all_args js.fr)" = \
    '"args":["params=W2","form=explicit","dtype=f32","block_rows=4","outputs=sum"] "args":["params=W2","form=explicit","dtype=f32","block_rows=4","outputs=sum"]'
entk-gram -q -o k.fr j.fr
check "entk-gram args" test "$(hdr_args k.fr)" = '"args":["reduce=trace","params=W1,W2","dtype=f64","blas_threads=1"]'
entk-gram -q --reduce mean --params W2 --dtype f32 --factor --stats --spool-mb 0 -o kf.fr j.fr
check "entk-gram args (all given)" test "$(hdr_args kf.fr)" = '"args":["reduce=mean","params=W2","dtype=f32","blas_threads=1","factor=1"]'
entk-gram -q --sum k.fr k.fr -o ks.fr
check "entk-gram args (--sum)" test "$(hdr_args ks.fr)" = '"args":["sum=2"]'
entk-eig -q --top 5 -o e.fr k.fr
check "entk-eig args" test "$(hdr_args e.fr)" = '"args":["top=5","ridge=1e-08","dtype=f64","blas_threads=1"]'
entk-eig -q --top 3 --ridge 0 --dtype f32 --solver full -o ef.fr k.fr
check "entk-eig args (all given)" test "$(hdr_args ef.fr)" = '"args":["top=3","ridge=0","dtype=f32","blas_threads=1","solver=full"]'
entk-features -q -p 29 --family sum,diff -o F.fr
entk-align -q -o al.fr e.fr F.fr
check "entk-align args (the range's end from the stream)" test "$(hdr_args al.fr)" = '"args":["range=1:5"]'
entk-align -q --range 2:4 -o al2.fr e.fr F.fr
check "entk-align args (--range)" test "$(hdr_args al2.fr)" = '"args":["range=2:4"]'
lm-ids --matrix '1,2,3,4,5;6,7,8,9,10;11,12,13,14,15;16,17,18,19,20' >w.fr
entk-jacobian -q -m g --layer 1 -o L.fr w.fr
check "entk-jacobian args (language model, matfree)" test "$(hdr_args L.fr)" = '"args":["layer=1","param=down","dtype=f32"]'
entk-jacobian -q -m g --layer 0,-1 --params q --form explicit --chunk 2 --dtype f64 -o Lx.fr w.fr
check "entk-jacobian args (language model, explicit, two blocks)" test "$(all_args Lx.fr)" = \
    '"args":["layer=0","param=q","dtype=f64","form=explicit","chunk=2"] "args":["layer=3","param=q","dtype=f64","form=explicit","chunk=2"]'
$PY -c "
import sys, numpy as np; sys.path.insert(0, '$ROOT/tests/peer'); import entkio
entkio.write_arrays('z.fr', 'test', [('z', np.random.default_rng(1).standard_normal((4, 64)))])"
entk-jacobian -q -m g --layer 1 --vjp z.fr -o Lv.fr w.fr
check "entk-jacobian args (language model, --vjp)" test "$(hdr_args Lv.fr)" = '"args":["layer=1","param=down","dtype=f32","form=vjp","chunk=0"]'
entk-eig -q --lanczos -m g --top 2 --steps 4 -o lz.fr L.fr
check "entk-eig args (--lanczos)" test "$(hdr_args lz.fr)" = \
    '"args":["lanczos=1","top=2","steps=4","seed=0","converge=0","tol=0.0001","chunk=0"]'
entk-eig -q --lanczos -m g --top 2 --steps 4 --seed 3 --converge --tol 0.5 --max-products 10 --chunk 2 --mem 1 --threads 1 -o lz2.fr L.fr
check "entk-eig args (--lanczos, all given)" test "$(hdr_args lz2.fr)" = \
    '"args":["lanczos=1","top=2","steps=4","seed=3","converge=1","tol=0.5","chunk=2"]'
entk-forward -q -m g --outputs resid --layers 1,2 -o res.fr w.fr
entk-eig -q --pca --top 2 -o pca.fr res.fr
check "entk-eig args (--pca: one stream per layer)" test "$(all_args pca.fr)" = '"args":["pca","top=2","layer=1"] "args":["pca","top=2","layer=2"]'
$PY "$ROOT/tests/peer/score_ref.py" craft-labels cw.fr cs.fr 301 12 9
entk-labels -q --top 10 -o lb.fr cw.fr cs.fr
check "entk-labels args" test "$(hdr_args lb.fr)" = '"args":["seed=0","top=10"]'
entk-labels -q --top 12 --seed 3 --examples 2 -o lbe.fr cw.fr cs.fr
check "entk-labels args (--examples)" test "$(hdr_args lbe.fr)" = '"args":["seed=3","top=12","examples=2"]'
TOK=$SHARED/models/stories260K/tok512.bin
printf 'Once upon a time\n<|endoftext|>\nThe end\n' >s.txt
entk-tokenize -q -t "$TOK" -o tk.fr s.txt
check "entk-tokenize args" test "$(hdr_args tk.fr)" = '"args":["--format","llama2","--whole","--bos","--invalid-utf8","error"]'
entk-tokenize -q -t "$TOK" --format llama2 --delim '<|endoftext|>' --drop-tail --no-bos --eos --invalid-utf8 replace -o tkd.fr s.txt
check "entk-tokenize args (all given)" test "$(hdr_args tkd.fr)" = \
    '"args":["--format","llama2","--delim","<|endoftext|>","--drop-tail","--no-bos","--eos","--invalid-utf8","replace"]'
entk-tokenize -q -t "$TOK" --lines -o tkl.fr s.txt
check "entk-tokenize args (--lines)" test "$(hdr_args tkl.fr)" = '"args":["--format","llama2","--lines","--bos","--invalid-utf8","error"]'

# options of another kind of run than the one asked for: refused, one line
check_fails "entk-eig --steps without --lanczos" 2 "^entk-eig: error: --steps goes with --lanczos$" entk-eig --steps 5 k.fr
check_fails "entk-eig --ridge with --lanczos" 2 "--ridge is for Gram streams, not --lanczos" entk-eig --lanczos -m g --ridge 1 L.fr
check_fails "entk-gram --sum with --reduce" 2 "--reduce is for Grams of Jacobian streams, not --sum" entk-gram --sum --reduce mean k.fr
check_fails "entk-jacobian --chunk with the matfree form" 2 "--chunk is for --form explicit, --jvp and --vjp" entk-jacobian -m g --layer 1 --chunk 2 w.fr
check_fails "entk-jacobian --block-rows with a language model" 2 "--block-rows is for entk-train checkpoints; g is a language model" \
    entk-jacobian -m g --layer 1 --block-rows 2 w.fr
check_fails "entk-tokenize --no-bos with --decode" 2 "--no-bos is for encoding" entk-tokenize -t "$TOK" --decode --no-bos tk.fr
check_fails "entk-tokenize --delim then --lines" 2 "--lines and --delim exclude each other" entk-tokenize -t "$TOK" --delim x --lines s.txt
check_fails "entk-tokenize --lines then --delim" 2 "--lines and --delim exclude each other" entk-tokenize -t "$TOK" --lines --delim x s.txt
check_fails "entk-cache --verify with gc" 2 "--verify does not belong to 'gc'" entk-cache --verify gc
