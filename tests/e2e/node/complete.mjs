// Non-streaming chat completion (and a models list) with the official openai package.
// Usage: node complete.mjs '{"baseURL": "...", "model": "...", "prompt": "...", "params": {...}}'
// Prints one JSON object: the completion's essentials, the models, or the typed error the SDK threw.
import OpenAI from "openai";

const args = JSON.parse(process.argv[2]);
const client = new OpenAI({ baseURL: args.baseURL, apiKey: "e2e-unused", maxRetries: 0, timeout: 120_000 });

try {
  const models = await client.models.list();
  const done = await client.chat.completions.create({
    model: args.model,
    messages: [{ role: "user", content: args.prompt }],
    ...(args.params ?? {}),
  });
  const choice = done.choices[0];
  console.log(JSON.stringify({
    ok: true,
    models: models.data.map((m) => ({ id: m.id, description: m.description })),
    id: done.id,
    object: done.object,
    model: done.model,
    fingerprint: done.system_fingerprint,
    role: choice.message.role,
    content: choice.message.content,
    reasoning: choice.message.reasoning_content ?? null,
    finish_reason: choice.finish_reason,
    usage: done.usage,
  }));
} catch (err) {
  if (!(err instanceof OpenAI.APIError)) throw err;
  console.log(JSON.stringify({
    ok: false,
    name: err.constructor.name,
    status: err.status ?? null,
    code: err.code ?? null,
    type: err.type ?? null,
    param: err.param ?? null,
    message: err.message,
  }));
}
