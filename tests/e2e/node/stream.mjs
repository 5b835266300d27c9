// Streaming chat completion with the official openai package.
// Usage: node stream.mjs '{"baseURL": "...", "model": "...", "prompt": "...", "params": {...}}'
// Prints one JSON object: every chunk's essentials in order, or the typed error the SDK threw.
import OpenAI from "openai";

const args = JSON.parse(process.argv[2]);
const client = new OpenAI({ baseURL: args.baseURL, apiKey: "e2e-unused", maxRetries: 0, timeout: 120_000 });
const chunks = [];

try {
  const stream = await client.chat.completions.create({
    model: args.model,
    messages: [{ role: "user", content: args.prompt }],
    stream: true,
    ...(args.params ?? {}),
  });
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    chunks.push({
      id: chunk.id,
      object: chunk.object,
      model: chunk.model,
      fingerprint: chunk.system_fingerprint,
      role: choice?.delta?.role ?? null,
      content: choice?.delta?.content ?? null,
      reasoning: choice?.delta?.reasoning_content ?? null,
      finish_reason: choice?.finish_reason ?? null,
      has_choice: Boolean(choice),
      usage: chunk.usage ?? null,
    });
  }
  console.log(JSON.stringify({ ok: true, chunks }));
} catch (err) {
  if (!(err instanceof OpenAI.APIError)) throw err;
  console.log(JSON.stringify({
    ok: false,
    chunks,
    name: err.constructor.name,
    status: err.status ?? null,
    code: err.code ?? null,
    type: err.type ?? null,
    message: err.message,
  }));
}
