// What this browser remembers about the operations it created: the prompt and parameters
// (the operations list carries neither) and the names of the uploaded images. No image bytes.

const STORAGE = "cinegen.requests";
const LIMIT = 300;

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE) || "{}");
  } catch {
    return {};
  }
}

export function getRecord(name) {
  return load()[name] || null;
}

export function putRecord(name, record) {
  const all = load();
  all[name] = { ...record, savedAt: Date.now() };
  const names = Object.keys(all);
  if (names.length > LIMIT) {
    names
      .sort((a, b) => all[a].savedAt - all[b].savedAt)
      .slice(0, names.length - LIMIT)
      .forEach((old) => delete all[old]);
  }
  localStorage.setItem(STORAGE, JSON.stringify(all));
}

export function dropRecord(name) {
  const all = load();
  delete all[name];
  localStorage.setItem(STORAGE, JSON.stringify(all));
}
