// The official @anthropic-ai/sdk (TypeScript) against the demo stack, one scenario per run.
// Usage: node anthropic.mjs '{"baseURL": "...", "scenario": "...", "model": "...", "thinkingModel": "...", "image": "<base64 png>"}'
// Prints one JSON object with what the scenario saw (or the typed errors the SDK threw).
import Anthropic from "@anthropic-ai/sdk";

const args = JSON.parse(process.argv[2]);
const client = new Anthropic({ baseURL: args.baseURL, apiKey: "e2e-unused", maxRetries: 0, timeout: 120_000 });
const WEATHER = {
  name: "get_weather",
  description: "The weather in a city.",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

function essentials(msg) {
  return {
    id: msg.id,
    type: msg.type,
    role: msg.role,
    model: msg.model,
    stop_reason: msg.stop_reason,
    content: msg.content,
    usage: msg.usage,
  };
}

async function typedError(request) {
  try {
    await request();
    return { thrown: null };
  } catch (err) {
    if (!(err instanceof Anthropic.APIError)) throw err;
    return { thrown: err.constructor.name, status: err.status, type: err.error?.error?.type ?? null };
  }
}

const scenarios = {
  async create() {
    const msg = await client.messages.create({
      model: args.model,
      max_tokens: 200,
      system: "Be brief.",
      messages: [{ role: "user", content: "#sim:words=5 hello from node" }],
    });
    return essentials(msg);
  },

  async stream() {
    const stream = client.messages.stream({
      model: args.thinkingModel,
      max_tokens: 8000,
      thinking: { type: "enabled", budget_tokens: 2048 },
      tools: [WEATHER],
      messages: [{ role: "user", content: '#sim:think=6 #sim:tool=get_weather #sim:args={"city": "Oslo"} weather?' }],
    });
    const events = [];
    for await (const event of stream) {
      events.push(event.type === "content_block_delta" ? `${event.type}:${event.delta.type}` : event.type);
    }
    return { events, message: essentials(await stream.finalMessage()) };
  },

  async loop() {
    const ask = { role: "user", content: '#sim:tool=get_weather #sim:args={"city": "Lima"} weather in Lima?' };
    const first = await client.messages.create({ model: args.model, max_tokens: 500, tools: [WEATHER], messages: [ask] });
    const call = first.content.find((block) => block.type === "tool_use");
    const second = await client.messages.create({
      model: args.model,
      max_tokens: 500,
      tools: [WEATHER],
      messages: [
        { role: "user", content: "weather in Lima? #sim:words=3" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "foggy, 17 degrees" }] },
      ],
    });
    return { first: essentials(first), second: essentials(second) };
  },

  async image() {
    const msg = await client.messages.create({
      model: args.model,
      max_tokens: 200,
      messages: [
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/png", data: args.image } },
            { type: "text", text: "What is in this picture?" },
          ],
        },
      ],
    });
    return essentials(msg);
  },

  async count() {
    const short = await client.messages.countTokens({ model: args.model, messages: [{ role: "user", content: "hi" }] });
    const long = await client.messages.countTokens({
      model: args.model,
      system: "You are a weather bot.",
      tools: [WEATHER],
      messages: [{ role: "user", content: "tell me the weather in every capital of Europe ".repeat(20) }],
    });
    return { short: short.input_tokens, long: long.input_tokens };
  },

  async errors() {
    const unknownModel = await typedError(() =>
      client.messages.create({ model: "claude-nope", max_tokens: 10, messages: [{ role: "user", content: "x" }] }),
    );
    const noMaxTokens = await typedError(() =>
      client.messages.create({ model: args.model, messages: [{ role: "user", content: "x" }] }),
    );
    const badRole = await typedError(() =>
      client.messages.create({ model: args.model, max_tokens: 10, messages: [{ role: "tool", content: "x" }] }),
    );
    return { unknownModel, noMaxTokens, badRole };
  },
};

console.log(JSON.stringify(await scenarios[args.scenario]()));
