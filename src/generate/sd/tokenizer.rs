//! CLIP prompt tokenization, from either of the two formats model repositories ship.
//!
//! Stable Diffusion repositories carry the slow-tokenizer files `vocab.json` + `merges.txt`; CLIP
//! model repositories also carry the fast `tokenizer.json`. Both describe the same byte-level BPE
//! with `</w>` word ends. For the pair we build the `tokenizer.json` that transformers'
//! `CLIPTokenizerFast` would convert them to ([`clip_tokenizer_json`]), so there is one tokenizer
//! implementation whichever files a user has.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::Path;

const START: &str = "<|startoftext|>";
const END: &str = "<|endoftext|>";

/// File names of the slow-tokenizer pair, in a tokenizer folder.
pub const VOCAB_FILE: &str = "vocab.json";
pub const MERGES_FILE: &str = "merges.txt";

/// The fast-tokenizer description of a CLIP BPE: `vocab` maps tokens to ids (it must hold the
/// start and end tokens), `merges` are "left right" pairs in priority order.
pub fn clip_tokenizer_json(vocab: Map<String, Value>, merges: Vec<String>) -> Result<Value> {
    let id = |t: &str| vocab.get(t).and_then(Value::as_u64).with_context(|| format!("the vocabulary has no `{t}` token; it is not a CLIP tokenizer"));
    let (start, end) = (id(START)?, id(END)?);
    let special = |id: u64, content: &str| json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true});
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(start, START), special(end, END)],
        // CLIP lower-cases and collapses whitespace before splitting.
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        // CLIP's word pattern (contractions, letter runs, single digits, punctuation runs), then
        // the GPT-2 byte-to-unicode mapping without its own splitting.
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": [END, end], "cls": [START, start], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": END, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false,
            "vocab": vocab,
            "merges": merges
        }
    }))
}

/// Reads `vocab.json` and `merges.txt` from `dir` into [`clip_tokenizer_json`]'s form.
fn tokenizer_json_from_pair(dir: &Path) -> Result<Value> {
    let vocab_file = dir.join(VOCAB_FILE);
    let merges_file = dir.join(MERGES_FILE);
    let vocab_text = std::fs::read_to_string(&vocab_file).with_context(|| format!("cannot read {}", vocab_file.display()))?;
    let vocab: Map<String, Value> = serde_json::from_str(&vocab_text).with_context(|| format!("{} is not a JSON object of token ids", vocab_file.display()))?;
    let merges_text = std::fs::read_to_string(&merges_file).with_context(|| format!("cannot read {} (it belongs beside {VOCAB_FILE})", merges_file.display()))?;
    let mut merges = Vec::new();
    for (i, line) in merges_text.lines().enumerate() {
        // The first line is a "#version" header; blank lines end some files.
        if line.starts_with("#version") || line.trim().is_empty() {
            continue;
        }
        if line.split(' ').count() != 2 {
            bail!("{}:{}: a merge is two tokens separated by one space, found {line:?}", merges_file.display(), i + 1);
        }
        merges.push(line.to_string());
    }
    clip_tokenizer_json(vocab, merges).with_context(|| vocab_file.display().to_string())
}

/// A tokenizer padded to the encoder's fixed context, as the diffusers pipelines do.
pub struct PromptTokenizer {
    tokenizer: tokenizers::Tokenizer,
    pad_id: u32,
    eos_id: u32,
    bos_id: u32,
    context: usize,
}

impl PromptTokenizer {
    /// `file` is a `tokenizer.json`, or a `vocab.json` with `merges.txt` beside it.
    pub fn load(file: &Path, context: usize, pad_with_bang: bool) -> Result<Self> {
        let tokenizer = if file.file_name().is_some_and(|n| n == VOCAB_FILE) {
            let json = tokenizer_json_from_pair(file.parent().unwrap_or(Path::new(".")))?;
            tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&json)?)
                .map_err(|e| anyhow::anyhow!("{} + {MERGES_FILE} do not form a usable tokenizer: {e}", file.display()))?
        } else {
            tokenizers::Tokenizer::from_file(file).map_err(|e| anyhow::anyhow!("{} is not a usable tokenizer.json: {e}", file.display()))?
        };
        let id = |t: &str| tokenizer.token_to_id(t);
        let eos_id = id(END).with_context(|| format!("{} has no `{END}` token; it is not a CLIP tokenizer", file.display()))?;
        let bos_id = id(START).with_context(|| format!("{} has no `{START}` token; it is not a CLIP tokenizer", file.display()))?;
        // SD 2.x / SDXL tokenizers pad with "!" (their tokenizer_config's pad_token), SD 1.x with EOS.
        // transformers pads with the token "!" itself (id 0 in CLIP's vocabulary), not "!</w>".
        let bang = id("!");
        let pad_id = if pad_with_bang { bang.unwrap_or(eos_id) } else { eos_id };
        Ok(Self { tokenizer, pad_id, eos_id, bos_id, context })
    }

    /// Token ids per prompt: the encoder's fixed context length.
    pub fn context(&self) -> usize {
        self.context
    }

    /// BOS, the prompt's tokens (truncated to fit), EOS, then padding to the context length.
    pub fn ids(&self, prompt: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(prompt, false).map_err(|e| anyhow::anyhow!("cannot tokenize prompt {prompt:?}: {e}"))?;
        let mut ids = vec![self.bos_id];
        ids.extend(enc.get_ids().iter().copied().take(self.context - 2));
        ids.push(self.eos_id);
        ids.resize(self.context, self.pad_id);
        Ok(ids)
    }
}
