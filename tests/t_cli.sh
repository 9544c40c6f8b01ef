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
check_fails "a derived row without its show is refused" 1 "option table: derived row --span needs a name, a show and a printing key policy" \
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
